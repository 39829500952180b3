"""CSV decoded a large chunk at a time reads exactly as through ``open(newline="")``.

``readers.text_lines`` splits decoded chunks into lines itself; these tests shrink the chunk
to a few bytes so that every kind of boundary (inside ``\\r\\n``, inside a multi-byte
character, inside a quoted line break, inside the BOM) falls between two chunks.
"""

from __future__ import annotations

import csv
import gzip
import io

import pytest

from tap_segments.exports import readers
from tap_segments.exports.readers import PlainRow, decode_rows

SAMPLES = {
    "lf": b"id,note\n1,plain\n2,\n",
    "crlf": b"id,note\r\n1,plain\r\n2,x\r\n",
    "cr only": b"id,note\r1,plain\r2,x\r",
    "no final newline": b"id,note\n1,plain\n2,last",
    "quoted breaks": b'id,note\n1,"a\r\nb"\n2,"c\rd\ne"\n3,"say ""hi"", ok"\n',
    "utf-8 and bom": "\ufeffid,note\n1,caf\u00e9 \u2603 \U0001f600\n2,\u00fc\n".encode(),
    "blank lines": b"id,note\n1,a\n\n2,b\n\n",
}


def reference_rows(data: bytes) -> list[dict]:
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    header = next(reader)
    return [dict(zip(header, values, strict=True)) for values in reader if values]


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 1 << 20])
def test_any_chunk_size_reads_like_newline_none(name, chunk, monkeypatch):
    monkeypatch.setattr(readers, "BUFFER_SIZE", chunk)
    data = SAMPLES[name]
    rows = list(decode_rows(io.BytesIO(data), "f", "csv"))
    assert rows == reference_rows(data)
    assert all(type(row) is PlainRow for row in rows)


def test_gzip_in_small_chunks(monkeypatch):
    monkeypatch.setattr(readers, "BUFFER_SIZE", 4)
    data = SAMPLES["quoted breaks"]
    assert list(decode_rows(io.BytesIO(gzip.compress(data)), "f")) == reference_rows(data)


def test_character_cut_at_the_end_of_the_file_is_a_format_error():
    with pytest.raises(readers.FileFormatError, match="not UTF-8"):
        list(decode_rows(io.BytesIO("id\n\u00e9\n".encode()[:-2]), "f", "csv"))
