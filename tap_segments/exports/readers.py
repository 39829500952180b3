"""Streaming readers for export result files: bytes in, rows out, in bounded memory.

A result file is never read whole. ``decode_rows`` wraps a binary stream in a large read
buffer, detects gzip by its magic bytes (whatever ``Content-Encoding`` said; HTTP content
codings were already undone by the download), skips a UTF-8 BOM, refuses an HTML or XML
page posing as a result file, detects the format when the vendor does not say it (``[``
JSON array, ``{`` JSON lines, else CSV with a header) and yields one dict per row.

Valid files always load: CSV cells of any size, repeated or empty header names (renamed
without colliding: ``email,email,email_2`` gives ``email, email_3, email_2``; an empty name
becomes ``column_<position>``). A decode error names the file's real line.

CSV rows also come in chunks (``CsvChunk``: the header and up to ``CHUNK_ROWS`` rows of
values, ``decode_items``), so that a writer can encode many rows per call. A chunk holds
about ``CHUNK_CHARS`` characters of the file at most (fewer rows when rows are long), and
rows read before an error are still handed over, in a last shorter chunk, before the error.

``iter_file_items`` (chunks and JSON rows) and ``iter_file_rows`` (rows one by one) add the
safe point: when a download breaks part-way (connection reset, short read, truncated gzip),
they open the file again and skip the rows already yielded, so no row is lost and none is
yielded twice; after ``max_attempts`` they fail, naming the file.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import http.client
import io
import itertools
import json
import logging
import re
import sys
import typing as t
import zlib

import ijson
import requests
import urllib3.exceptions

from tap_segments.errors import DownloadInterruptedError, FileFormatError
from tap_segments.rows import CsvChunk, PlainRow, Row, collector_paused  # noqa: F401 - PlainRow: named here too

BUFFER_SIZE = 1 << 20
#: Rows of a CSV chunk at most, and the characters of the file it should hold at most.
CHUNK_ROWS = 5_000
CHUNK_CHARS = 4 << 20
#: Rows of the first chunk of a file, before its row length is known.
FIRST_CHUNK_ROWS = 100
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
#: What an error page starts with (a proxy's HTML page, S3's ``<Error>`` document).
MARKUP = re.compile(rb"^\s*<(?:!doctype|html|head|body|\?xml|error|title)\b", re.IGNORECASE)

# A cell may be larger than csv's default limit of 128 KiB (a profile attribute, JSON in a
# column): the limit is the largest the platform's C long allows.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

#: Errors that mean "the bytes stopped coming", not "the bytes are wrong".
TRANSIENT_READ_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
    EOFError,  # gzip stream ended before its end-of-stream marker
)


GzipReader: t.Any
GzipDataError: type[Exception]
try:  # ISA-L's gzip reader (``isal``, a dependency on CPython): a third of zlib's work
    from isal import isal_zlib
    from isal.igzip import IGzipFile as GzipReader

    GzipDataError = t.cast("type[Exception]", isal_zlib.error)
except ImportError:
    GzipReader = gzip.GzipFile
    GzipDataError = zlib.error


def open_binary(raw: t.BinaryIO) -> t.Any:
    """Buffer ``raw``, gunzip it when it starts with the gzip magic, skip a UTF-8 BOM."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, BUFFER_SIZE)  # type: ignore[arg-type,type-var]
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        buffered = io.BufferedReader(GzipReader(fileobj=buffered, mode="rb"), BUFFER_SIZE)  # type: ignore[arg-type]
    if buffered.peek(3)[:3] == UTF8_BOM:
        buffered.read(3)
    return buffered


def check_not_markup(binary: io.BufferedReader, name: str) -> None:
    """An HTML or XML page where a result file was expected is an error, never rows."""
    head = binary.peek(512)[:512]
    if MARKUP.match(head):
        text = " ".join(head.decode("utf-8", "replace").split())[:120]
        raise FileFormatError(
            f"{name}: the download answered an HTML/XML page, not the result file "
            f"(starts {text!r}); nothing of it was loaded."
        )


def sniff_format(binary: io.BufferedIOBase) -> str:
    """Guess csv / json / jsonl from the first non-blank byte."""
    head = binary.peek(256)  # type: ignore[attr-defined]
    head = head.removeprefix(UTF8_BOM).lstrip()
    if head[:1] == b"[":
        return "json"
    if head[:1] == b"{":
        return "jsonl"
    return "csv"


def decode_items(
    raw: t.BinaryIO,
    name: str,
    fmt: str | None = None,
    *,
    json_items_path: str = "item",
    logger: logging.Logger | None = None,
) -> t.Iterator[CsvChunk | Row]:
    """Yield the rows of one file, decoded as a stream: ``CsvChunk`` objects for CSV, one
    dict per row for JSON."""
    binary = open_binary(raw)
    if not binary.peek(1):
        if logger:
            logger.warning(
                "%s is empty (0 bytes) where a header or a JSON document was expected; no rows "
                "were loaded from it. If the export should have rows, run the sync again.",
                name,
            )
        return iter(())
    check_not_markup(binary, name)
    fmt = fmt or sniff_format(binary)
    if fmt == "csv":
        return csv_chunks(binary, name)
    if fmt == "json":
        return json_items(binary, name, json_items_path)
    if fmt == "jsonl":
        return json_lines(binary, name)
    raise FileFormatError(f"{name}: unknown file format {fmt!r}")


def decode_rows(
    raw: t.BinaryIO,
    name: str,
    fmt: str | None = None,
    *,
    json_items_path: str = "item",
    logger: logging.Logger | None = None,
) -> t.Iterator[Row]:
    """Yield the rows of one file one by one (CSV rows as ``PlainRow``)."""
    return rows_of_items(
        decode_items(raw, name, fmt, json_items_path=json_items_path, logger=logger)
    )


def rows_of_items(items: t.Iterable[CsvChunk | Row]) -> t.Iterator[Row]:
    """Rows one by one, from chunks and rows."""
    for item in items:
        if type(item) is CsvChunk:
            yield from item.plain_rows()
        else:
            yield t.cast(Row, item)


def unique_header(header: list[str]) -> list[str]:
    """Column names with no value lost or mis-assigned.

    An empty name becomes ``column_<position>`` (1-based); a repeated name gets the first
    free ``_<n>`` suffix (n >= 2) that no other column of the header uses, so
    ``email,email,email_2`` becomes ``email, email_3, email_2``.
    """
    named = [
        column if column != "" else f"column_{index}" for index, column in enumerate(header, 1)
    ]
    taken = set(named)
    seen: set[str] = set()
    result = []
    for column in named:
        if column in seen:
            suffix = 2
            while f"{column}_{suffix}" in taken:
                suffix += 1
            column = f"{column}_{suffix}"
            taken.add(column)
        seen.add(column)
        result.append(column)
    return result


def text_lines(
    binary: io.BufferedIOBase,
    name: str = "file",
    encoding: str = "utf-8-sig",
    decoded: list[int] | None = None,
) -> t.Iterator[str]:
    """The lines of a text stream, decoded ``BUFFER_SIZE`` bytes at a time.

    Lines keep their ends and split as ``open(..., newline="")`` splits them (``\n``,
    ``\r\n``, ``\r``), which is what ``csv`` expects. Decoding a large chunk at once and
    handing ``csv`` a C-level chain of line lists is markedly cheaper per row than a
    ``TextIOWrapper`` over a network stream, which checks the stream per line.
    ``decoded[0]``, when given, counts the characters decoded so far.
    """
    return itertools.chain.from_iterable(_line_batches(binary, name, encoding, decoded))


def _line_batches(
    binary: io.BufferedIOBase, name: str, encoding: str, decoded: list[int] | None
) -> t.Iterator[list[str]]:
    decoder = codecs.getincrementaldecoder(encoding)()
    tail = ""  # a last line without its end (its "\n" may open the next chunk)
    lines_before = 0  # line breaks in the bytes decoded so far
    while True:
        chunk = binary.read(BUFFER_SIZE)
        try:
            text = tail + decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            line = lines_before + chunk[: max(exc.start, 0)].count(b"\n") + 1
            raise FileFormatError(
                f"{name}, line {line}: not {encoding.removesuffix('-sig').upper()} text "
                f"(byte {exc.object[exc.start : exc.start + 1]!r}: {exc.reason})"
            ) from None
        lines_before += chunk.count(b"\n")
        if decoded is not None:
            decoded[0] += len(text) - len(tail)
        lines = io.StringIO(text, newline="").readlines()
        if not chunk:
            yield lines
            return
        tail = lines.pop() if lines and not lines[-1].endswith("\n") else ""
        yield lines


def csv_chunks(binary: io.BufferedIOBase, name: str) -> t.Iterator[CsvChunk]:
    """The rows of a CSV file in chunks of up to ``CHUNK_ROWS`` rows (fewer when rows are
    long: about ``CHUNK_CHARS`` characters a chunk), blank lines left out.

    Rows read before an error (a broken quote, a row that disagrees with the header, a
    broken download) are yielded first, so that exactly the rows before it are handed over.
    """
    decoded = [0]
    reader = csv.reader(text_lines(binary, name, decoded=decoded), strict=True)
    try:
        first = next(reader, None)
    except csv.Error as exc:
        raise FileFormatError(f"{name}, line {reader.line_num}: {exc}") from exc
    if first is None:
        return
    header = unique_header(first)
    width = len(header)
    size = FIRST_CHUNK_ROWS
    read = 0
    while True:
        line = reader.line_num
        values: list[list[str]] = []
        failure: BaseException | None = None
        try:
            with collector_paused():  # see there: rows make no reference cycles
                values.extend(itertools.islice(reader, size))  # keeps what it read on an error
        except csv.Error as exc:
            failure = FileFormatError(f"{name}, line {reader.line_num}: {exc}")
            failure.__cause__ = exc
        except Exception as exc:  # handed on after the rows read before it
            failure = exc
        full = len(values) == size
        if values and not _all_of_width(values, width):
            values, bad = _rows_of_width(values, width, line)
            if bad is not None and failure is None:
                failure = FileFormatError(
                    f"{name}, line {bad[0]}: {bad[1]} values for the {width} columns of the header"
                )
        if values:
            yield CsvChunk(header, values)
        if failure is not None:
            raise failure
        if not full:
            return
        read += size
        size = max(1, min(CHUNK_ROWS, CHUNK_CHARS * read // max(decoded[0], 1)))


def _all_of_width(values: list[list[str]], width: int) -> bool:
    lengths = set(map(len, values))
    return len(lengths) == 1 and width in lengths


def _rows_of_width(
    values: list[list[str]], width: int, line: int
) -> tuple[list[list[str]], tuple[int, int] | None]:
    """The rows before the first that disagrees with the header, without blank lines; and
    that row's (line, number of values), if any. ``line``: lines read before ``values``."""
    kept = []
    for row in values:
        line += 1 + sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)
        if len(row) == width:
            kept.append(row)
        elif row:
            return kept, (line, len(row))
    return kept, None


def json_items(binary: io.BufferedIOBase, name: str, items_path: str) -> t.Iterator[Row]:
    try:
        for index, item in enumerate(ijson.items(binary, items_path, use_float=True)):
            if not isinstance(item, dict):
                raise FileFormatError(f"{name}, item {index}: expected an object, got {item!r:.80}")
            yield item
    except ijson.IncompleteJSONError as exc:
        if _is_premature_end(exc):
            raise EOFError(f"{name}: JSON ended early") from exc
        raise FileFormatError(f"{name}: not valid JSON ({exc})") from exc
    except ijson.JSONError as exc:
        raise FileFormatError(f"{name}: not valid JSON ({exc})") from exc


def _is_premature_end(exc: Exception) -> bool:
    return "premature" in str(exc).lower() or "incomplete" in str(exc).lower()


def json_lines(binary: io.BufferedIOBase, name: str) -> t.Iterator[Row]:
    for line_number, line in enumerate(binary, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            if not line.endswith(b"\n"):
                raise EOFError(f"{name}: last line cut off") from exc
            raise FileFormatError(f"{name}, line {line_number}: not valid JSON ({exc})") from exc
        if not isinstance(item, dict):
            raise FileFormatError(f"{name}, line {line_number}: expected a JSON object")
        yield item


def iter_file_items(
    open_file: t.Callable[[], t.BinaryIO],
    name: str,
    fmt: str | None = None,
    *,
    json_items_path: str = "item",
    max_attempts: int = 3,
    logger: logging.Logger | None = None,
) -> t.Iterator[CsvChunk | Row]:
    """Rows of one file (CSV in chunks), re-opening it after a broken download and skipping
    the rows already yielded."""
    yielded = 0
    attempt = 1
    while True:
        raw = open_file()
        try:
            items = decode_items(
                raw, name, fmt, json_items_path=json_items_path, logger=None if yielded else logger
            )
            skip = yielded  # a new attempt: pass over the rows already emitted
            for item in items:
                if skip:
                    size = len(item) if type(item) is CsvChunk else 1
                    if size <= skip:
                        skip -= size
                        continue
                    item, skip = t.cast(CsvChunk, item).tail(skip), 0
                yielded += len(item) if type(item) is CsvChunk else 1
                yield item
            return
        except TRANSIENT_READ_ERRORS as exc:
            if attempt >= max_attempts:
                raise DownloadInterruptedError(
                    f"Download of {name} broke off {attempt} times; last after {yielded} "
                    f"rows: {exc.__class__.__name__}: {exc}"
                ) from exc
            if logger:
                logger.warning(
                    "Download of %s broke off after %d rows (%s); reading it again from the "
                    "start and skipping the rows already emitted.",
                    name,
                    yielded,
                    exc.__class__.__name__,
                )
            attempt += 1
        except (zlib.error, GzipDataError) as exc:
            raise FileFormatError(f"{name}: corrupt gzip data ({exc})") from exc
        except gzip.BadGzipFile as exc:
            raise FileFormatError(f"{name}: corrupt gzip data ({exc})") from exc
        except urllib3.exceptions.DecodeError as exc:
            raise FileFormatError(f"{name}: its content coding does not decode ({exc})") from None
        finally:
            raw.close()


def iter_file_rows(
    open_file: t.Callable[[], t.BinaryIO],
    name: str,
    fmt: str | None = None,
    *,
    json_items_path: str = "item",
    max_attempts: int = 3,
    logger: logging.Logger | None = None,
) -> t.Iterator[Row]:
    """Rows of one file one by one, re-opening it after a broken download and skipping rows
    already read."""
    return rows_of_items(
        iter_file_items(
            open_file,
            name,
            fmt,
            json_items_path=json_items_path,
            max_attempts=max_attempts,
            logger=logger,
        )
    )
