"""Bad result files and downloads that real servers and proxies produce (issue 13).

Each is a fault kind (``simulator.faults``) switched on for a vendor's files, on the storage
server or on the vendor's API (Acoustic's files). Two groups:

- ``ANSWER_KINDS`` replace the whole answer: a proxy's "502 Bad Gateway" page or S3's
  ``<Error>`` XML document served with status 200, as if it were the file.
- ``BODY_KINDS`` transform the real file as it is served, one byte chunk at a time, so a
  generated file of millions of rows still never sits in memory: a UTF-8 BOM first, a cell
  over 128 KiB (Python's ``csv`` refuses fields over 131072 characters by default), renamed
  header cells (duplicates, an empty name), 0 bytes, an HTTP content-coding.

``trickle`` is a way of sending (bytes dribbled out, then the connection closed), applied
by the server as it writes.

The transforms know the shape of the simulator's CSV files (a header line of plain names,
then rows whose first cell is unquoted); on a JSON file the CSV-only ones leave it as is.
"""

from __future__ import annotations

import time
import typing as t
import zlib

if t.TYPE_CHECKING:
    from simulator.faults import Fault
    from simulator.server import Response

BOM = b"\xef\xbb\xbf"
#: Python's csv module refuses a field longer than this unless ``csv.field_size_limit`` is raised.
CSV_FIELD_LIMIT = 131_072

ANSWER_KINDS = ("status", "html", "reset", "proxy_page", "xml_error")
BODY_KINDS = (
    "bom",
    "big_cell",
    "duplicate_headers",
    "empty_header",
    "empty_file",
    "content_encoding",
)

#: What nginx answers when its upstream fails; a proxy in front of storage may send it with
#: any status, and a careless one with 200.
PROXY_502_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
#: S3's error document (REST error responses: an ``<Error>`` element with Code, Message,
#: RequestId, HostId), here served with status 200 as if it were the file.
S3_ERROR_DOCUMENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
    b"<RequestId>SIM0000000000000</RequestId><HostId>c2ltdWxhdG9y</HostId></Error>"
)


class Tick(bytes):
    """A piece of a trickled body: the server flushes after writing it."""


class _Cut(bytes):
    """The marker after which the server closes the connection (the body stays short)."""


CUT = _Cut()


def big_cell_value(size: int = 200_000) -> str:
    """The value the ``big_cell`` fault puts in a CSV cell: ``size`` characters of text with
    commas, quotes and newlines, so the cell is quoted and spans lines."""
    unit = 'profile {"tags": "a,b", "note": "say ""hi"""}\n'
    return (unit * (size // len(unit) + 1))[:size]


def transform(response: Response, fault: Fault) -> Response:
    """``response`` (a file served with 200) changed as ``fault`` says."""
    from simulator.server import Response

    chunks = _chunks(response.body)
    headers = dict(response.headers)
    length = response.length if not isinstance(response.body, (bytes, bytearray)) else None
    if isinstance(response.body, (bytes, bytearray)):
        length = len(response.body)
    if fault.kind == "bom":
        chunks, length = _prepend(BOM, chunks), None if length is None else length + 3
    elif fault.kind == "big_cell":
        chunks, length = _big_cell(chunks, fault.size), None
    elif fault.kind == "duplicate_headers":
        chunks, length = _rename_header(chunks, _duplicate), None
    elif fault.kind == "empty_header":
        chunks, length = _rename_header(chunks, _blank), None
    elif fault.kind == "empty_file":
        chunks, length = iter(()), 0
    elif fault.kind == "content_encoding":
        chunks, length = encode(chunks, fault.encoding), None
        headers["Content-Encoding"] = "gzip" if fault.encoding == "gzip" else "deflate"
    return Response(response.status, chunks, headers, response.content_type, length)


def encode(chunks: t.Iterable[bytes], encoding: str) -> t.Iterator[bytes]:
    """``chunks`` compressed for ``Content-Encoding``: ``gzip``; ``deflate`` as RFC 9110 says
    (the zlib format, RFC 1950); ``deflate-raw``, raw deflate (RFC 1951) without the zlib
    wrapper, which some servers send labelled ``deflate``."""
    wbits = {"gzip": 31, "deflate": 15, "deflate-raw": -15}[encoding]
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    for chunk in chunks:
        packed = compressor.compress(chunk)
        if packed:
            yield packed
    yield compressor.flush()


def trickle(chunks: t.Iterable[bytes], fault: Fault) -> t.Iterator[bytes]:
    """``fault.tick_bytes`` every ``fault.tick_seconds``; after ``fault.for_seconds`` the
    ``CUT`` marker (the server then closes the connection), so a trickle always ends."""
    deadline = time.monotonic() + fault.for_seconds
    for chunk in chunks:
        for start in range(0, len(chunk), max(fault.tick_bytes, 1)):
            if time.monotonic() >= deadline:
                yield CUT
                return
            yield Tick(chunk[start : start + fault.tick_bytes])
            time.sleep(fault.tick_seconds)


def first_bytes(chunks: t.Iterable[bytes], size: int) -> t.Iterator[bytes]:
    """The first ``size`` bytes of ``chunks``."""
    left = size
    for chunk in chunks:
        if left <= 0:
            return
        yield chunk[:left]
        left -= len(chunk)


def _chunks(body: bytes | t.Iterable[bytes]) -> t.Iterator[bytes]:
    if isinstance(body, (bytes, bytearray)):
        return iter([bytes(body)])
    return iter(body)


def _prepend(prefix: bytes, chunks: t.Iterator[bytes]) -> t.Iterator[bytes]:
    yield prefix
    yield from chunks


def _lines_head(chunks: t.Iterator[bytes], lines: int) -> tuple[bytes, bool]:
    """Read from ``chunks`` until ``lines`` newlines were seen (or the end): (bytes, whole)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if head.count(b"\n") >= lines:
            return head, True
    return head, False


def _is_csv(head: bytes) -> bool:
    return head.lstrip()[:1] not in (b"[", b"{")


def _rename_header(
    chunks: t.Iterator[bytes], rename: t.Callable[[list[bytes]], list[bytes]]
) -> t.Iterator[bytes]:
    head, _ = _lines_head(chunks, 1)
    line, newline, rest = head.partition(b"\n")
    if not _is_csv(head) or not newline:
        yield head
    else:
        yield b",".join(rename(line.split(b","))) + newline + rest
    yield from chunks


def _duplicate(cells: list[bytes]) -> list[bytes]:
    """Three columns renamed ``email,email,email_2`` (the second to fourth, or the first
    three of a three-column file): three values whose names collide."""
    first = 1 if len(cells) >= 4 else 0
    names = [b"email", b"email", b"email_2"]
    return cells[:first] + names[: len(cells) - first] + cells[first + 3 :]


def _blank(cells: list[bytes]) -> list[bytes]:
    """The second column's name (the first of a one-column file) made empty."""
    index = 1 if len(cells) > 1 else 0
    return [b"" if i == index else cell for i, cell in enumerate(cells)]


def _big_cell(chunks: t.Iterator[bytes], size: int) -> t.Iterator[bytes]:
    """The first data row's first cell replaced by ``big_cell_value(size)``, quoted."""
    head, whole = _lines_head(chunks, 2)
    header, newline, rest = head.partition(b"\n")
    comma = rest.find(b",")
    if not _is_csv(head) or not newline or comma < 0 or not whole:
        yield head
    else:
        quoted = b'"' + big_cell_value(size).encode().replace(b'"', b'""') + b'"'
        yield header + newline + quoted + rest[comma:]
    yield from chunks
