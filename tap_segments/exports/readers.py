"""Streaming readers for export result files: bytes in, rows out, in bounded memory.

A result file is never read whole. ``decode_rows`` wraps a binary stream in a large read
buffer, detects gzip by its magic bytes (whatever ``Content-Encoding`` said), detects the
format when the vendor does not say it (``[`` JSON array, ``{`` JSON lines, else CSV with a
header) and yields one dict per row.

``iter_file_rows`` adds the safe point: when a download breaks part-way (connection reset,
short read, truncated gzip), it opens the file again and skips the rows already yielded, so
no row is lost and none is yielded twice; after ``max_attempts`` it fails, naming the file.
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
import typing as t
import zlib

import ijson
import requests
import urllib3.exceptions

from tap_segments.errors import DownloadInterruptedError, FileFormatError

Row = dict[str, t.Any]


class PlainRow(dict):
    """A row whose values are all ``str``, ``int``, ``bool`` or ``None``: a CSV row is one.

    The type is a promise to the tap's fast record path (``tap_segments.output``), which
    then skips checking each value. Code that puts any other kind of value into such a row
    must turn it into a plain ``dict`` first (``dict(row)``).
    """

    __slots__ = ()


#: The value types a ``PlainRow`` may hold.
PLAIN_VALUE_TYPES: frozenset[type] = frozenset({str, int, bool, type(None)})
BUFFER_SIZE = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

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


def open_binary(raw: t.BinaryIO) -> io.BufferedIOBase:
    """Buffer ``raw`` and transparently gunzip it when it starts with the gzip magic."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, BUFFER_SIZE)  # type: ignore[arg-type,type-var]
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), BUFFER_SIZE)  # type: ignore[arg-type]
    return buffered


def sniff_format(binary: io.BufferedIOBase) -> str:
    """Guess csv / json / jsonl from the first non-blank byte."""
    head = binary.peek(256)  # type: ignore[attr-defined]
    head = head.removeprefix(UTF8_BOM).lstrip()
    if head[:1] == b"[":
        return "json"
    if head[:1] == b"{":
        return "jsonl"
    return "csv"


def decode_rows(
    raw: t.BinaryIO,
    name: str,
    fmt: str | None = None,
    *,
    json_items_path: str = "item",
) -> t.Iterator[Row]:
    """Yield the rows of one file, decoded as a stream."""
    binary = open_binary(raw)
    fmt = fmt or sniff_format(binary)
    if fmt == "csv":
        return csv_rows(binary, name)
    if fmt == "json":
        return json_items(binary, name, json_items_path)
    if fmt == "jsonl":
        return json_lines(binary, name)
    raise FileFormatError(f"{name}: unknown file format {fmt!r}")


def unique_header(header: list[str]) -> list[str]:
    """Make repeated column names unique (``email``, ``email_2``) so no column is lost."""
    seen: dict[str, int] = {}
    result = []
    for column in header:
        count = seen.get(column, 0) + 1
        seen[column] = count
        result.append(column if count == 1 else f"{column}_{count}")
    return result


def text_lines(binary: io.BufferedIOBase, encoding: str = "utf-8-sig") -> t.Iterator[str]:
    """The lines of a text stream, decoded ``BUFFER_SIZE`` bytes at a time.

    Lines keep their ends and split as ``open(..., newline="")`` splits them (``\n``,
    ``\r\n``, ``\r``), which is what ``csv`` expects. Decoding a large chunk at once and
    handing ``csv`` a C-level chain of line lists is markedly cheaper per row than a
    ``TextIOWrapper`` over a network stream, which checks the stream per line.
    """
    return itertools.chain.from_iterable(_line_batches(binary, encoding))


def _line_batches(binary: io.BufferedIOBase, encoding: str) -> t.Iterator[list[str]]:
    decoder = codecs.getincrementaldecoder(encoding)()
    tail = ""  # a last line without its end (its "\n" may open the next chunk)
    while True:
        chunk = binary.read(BUFFER_SIZE)
        text = tail + decoder.decode(chunk, final=not chunk)
        lines = io.StringIO(text, newline="").readlines()
        if not chunk:
            yield lines
            return
        tail = lines.pop() if lines and not lines[-1].endswith("\n") else ""
        yield lines


def csv_rows(binary: io.BufferedIOBase, name: str) -> t.Iterator[Row]:
    reader = csv.reader(text_lines(binary), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = unique_header(header)
        width = len(header)
        for values in reader:
            if len(values) != width:
                if not values:  # a blank line carries no row
                    continue
                raise FileFormatError(
                    f"{name}, line {reader.line_num}: {len(values)} values for the "
                    f"{width} columns of the header"
                )
            yield PlainRow(zip(header, values, strict=False))  # widths checked above
    except csv.Error as exc:
        raise FileFormatError(f"{name}, line {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{name}, line {reader.line_num}: not UTF-8 text ({exc})") from exc


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


def iter_file_rows(
    open_file: t.Callable[[], t.BinaryIO],
    name: str,
    fmt: str | None = None,
    *,
    json_items_path: str = "item",
    max_attempts: int = 3,
    logger: logging.Logger | None = None,
) -> t.Iterator[Row]:
    """Rows of one file, re-opening it after a broken download and skipping rows already read."""
    yielded = 0
    attempt = 1
    while True:
        raw = open_file()
        try:
            rows = decode_rows(raw, name, fmt, json_items_path=json_items_path)
            if yielded:  # a new attempt: pass over the rows already emitted
                next(itertools.islice(rows, yielded, yielded), None)
            for row in rows:
                yielded += 1
                yield row
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
        except zlib.error as exc:
            raise FileFormatError(f"{name}: corrupt gzip data ({exc})") from exc
        except gzip.BadGzipFile as exc:
            raise FileFormatError(f"{name}: corrupt gzip data ({exc})") from exc
        finally:
            raw.close()
