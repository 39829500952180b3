"""Streaming file readers: formats, gzip by magic bytes, headers per file, safe-point retry."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from tap_segments.errors import DownloadInterruptedError, FileFormatError
from tap_segments.exports import readers
from tap_segments.exports.readers import decode_items, decode_rows, iter_file_items, iter_file_rows
from tap_segments.rows import CsvChunk

CSV = b'id,email,note\n1,a@x.io,"hello, world"\n2,b@x.io,"multi\nline"\n3,,\n'
ROWS = [
    {"id": "1", "email": "a@x.io", "note": "hello, world"},
    {"id": "2", "email": "b@x.io", "note": "multi\nline"},
    {"id": "3", "email": "", "note": ""},
]


def rows(data: bytes, fmt: str | None = None) -> list[dict]:
    return list(decode_rows(io.BytesIO(data), "test-file", fmt))


def test_csv_keeps_header_names_and_quoting():
    assert rows(CSV) == ROWS


def test_gzip_detected_by_magic_bytes():
    assert rows(gzip.compress(CSV)) == ROWS


def test_json_array_and_json_lines():
    objects = [{"a": 1, "b": {"c": [1, 2]}}, {"a": 2}]
    assert rows(json.dumps(objects).encode()) == objects
    assert rows(b"\n".join(json.dumps(o).encode() for o in objects) + b"\n") == objects
    assert rows(gzip.compress(json.dumps(objects).encode())) == objects


def test_bom_and_repeated_columns_lose_nothing():
    assert rows(b"\xef\xbb\xbfid,email,email\n1,a,b\n") == [
        {"id": "1", "email": "a", "email_2": "b"}
    ]


def test_row_that_disagrees_with_header_names_file_and_line():
    with pytest.raises(FileFormatError, match=r"test-file, line 3: 2 values for the 3 columns"):
        rows(b"a,b,c\n1,2,3\n4,5\n")


def test_broken_json_is_a_format_error():
    with pytest.raises(FileFormatError, match="test-file"):
        rows(b'[{"a": 1}, {"a": nope}]')


class CutStream(io.BytesIO):
    """A download that breaks off after ``cut`` bytes, like a reset connection."""

    def __init__(self, data: bytes, cut: int | None) -> None:
        super().__init__(data if cut is None else data[:cut])
        self.cut = cut

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        if not chunk and self.cut is not None:
            raise ConnectionResetError("connection reset by peer")
        return chunk

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def big_csv(n: int) -> bytes:
    return b"id,value\n" + b"".join(b"%d,v%d\n" % (i, i) for i in range(n))


@pytest.mark.parametrize("compress", [False, True])
def test_broken_download_resumes_without_loss_or_repeat(compress):
    data = big_csv(5000)
    data = gzip.compress(data) if compress else data
    cuts = iter([len(data) // 3, len(data) // 2, None])
    opened: list[int] = []

    def open_file():
        cut = next(cuts)
        opened.append(cut or -1)
        return CutStream(data, cut)

    ids = [row["id"] for row in iter_file_rows(open_file, "f.csv")]
    assert ids == [str(i) for i in range(5000)]
    assert len(opened) == 3


def test_download_that_keeps_breaking_fails_naming_the_file():
    data = big_csv(1000)
    with pytest.raises(DownloadInterruptedError, match=r"f\.csv broke off 3 times"):
        list(iter_file_rows(lambda: CutStream(data, 100), "f.csv", max_attempts=3))


def test_truncated_gzip_is_retried_not_taken_as_end_of_file():
    data = gzip.compress(big_csv(2000))
    attempts = iter([data[: len(data) - 20], data])
    ids = [r["id"] for r in iter_file_rows(lambda: io.BytesIO(next(attempts)), "g.csv.gz")]
    assert len(ids) == 2000 and len(set(ids)) == 2000


# -- CSV in chunks ------------------------------------------------------------------------


def items(data: bytes) -> list:
    return list(decode_items(io.BytesIO(data), "test-file", "csv"))


def test_csv_chunks_grow_to_the_row_limit_and_hold_every_row(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 1000)
    chunks = items(big_csv(25_000))
    assert all(type(c) is CsvChunk and c.header == ["id", "value"] for c in chunks)
    sizes = [len(c) for c in chunks]
    assert sizes[0] == readers.FIRST_CHUNK_ROWS
    assert max(sizes) == 1000 and sum(sizes) == 25_000
    assert [r[0] for c in chunks for r in c.rows] == [str(i) for i in range(25_000)]


def test_csv_chunks_stay_small_when_rows_are_long(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_CHARS", 100_000)
    cell = "x" * 10_000
    data = ("id,big\n" + "".join(f"{i},{cell}\n" for i in range(300))).encode()
    chunks = items(data)
    assert sum(map(len, chunks)) == 300
    # after the first chunk, about CHUNK_CHARS characters a chunk (the estimate reads ahead)
    assert max(len(c) for c in chunks[1:]) <= 2 * 100_000 // 10_000


def test_rows_before_a_bad_row_are_handed_over_first_and_the_line_is_exact():
    data = b'a,b\n1,"x\ny"\n\n2,"p\r\nq\rr"\n3\n4,5\n'
    got: list = []
    with pytest.raises(FileFormatError, match=r"test-file, line 8: 1 values for the 2 columns"):
        got.extend(decode_items(io.BytesIO(data), "test-file", "csv"))
    assert [r for c in got for r in c.rows] == [["1", "x\ny"], ["2", "p\r\nq\rr"]]


def test_rows_before_a_broken_quote_are_handed_over_first():
    data = b'a,b\n1,2\n3,"4"x\n5,6\n'
    got: list = []
    with pytest.raises(FileFormatError, match=r"test-file, line 3: "):
        got.extend(decode_items(io.BytesIO(data), "test-file", "csv"))
    assert [r for c in got for r in c.rows] == [["1", "2"]]


def test_a_retry_skips_the_rows_already_handed_over_inside_a_chunk(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_ROWS", 700)
    data = big_csv(5000)
    cuts = iter([len(data) // 3, None])
    chunks = list(iter_file_items(lambda: CutStream(data, next(cuts)), "f.csv"))
    ids = [r[0] for c in chunks for r in c.rows]
    assert ids == [str(i) for i in range(5000)]


def test_a_decode_error_names_the_files_real_line_even_past_the_first_chunk():
    head = b"id,note\n" + b"".join(b"%d,plain text\n" % i for i in range(200_000))  # > 1 MiB
    bad = head + b'200000,"two\nlines"\n200001,caf\xe9\n'
    lines_before_bad = bad[: bad.index(b"\xe9")].count(b"\n")
    with pytest.raises(
        FileFormatError, match=rf"test-file, line {lines_before_bad + 1}: not UTF-8"
    ):
        rows(bad)


def test_header_names_never_collide_and_empty_ones_get_a_name():
    assert rows(b"email,email,email_2\na,b,c\n") == [{"email": "a", "email_3": "b", "email_2": "c"}]
    assert rows(b"id,,x\n1,2,3\n") == [{"id": "1", "column_2": "2", "x": "3"}]


def test_an_html_or_xml_page_is_never_read_as_rows():
    for page in (
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b"<?xml version='1.0'?><Error/>",
    ):
        with pytest.raises(FileFormatError, match="HTML/XML page"):
            rows(page)
