"""Faults tests switch on: wrong status codes, HTML pages, cut bodies, resets, delays, and
the bad result files of issue 13 (``simulator.badfiles``).

A fault matches a vendor, an HTTP method and a path regex, and fires ``times`` times (then
it is spent). The server asks ``FaultSet.take(...)`` before answering each request.

Result files on the storage server (Artisan ``result_url``, Indicative ``filename``) match
their vendor and the path they had on the vendor's API before storage existed,
``/files/<name>`` (so ``vendor="indicative", path="^/files/"`` still means "Indicative's
export files"); ``vendor="storage"`` matches any storage request by its ``/<bucket>/<key>``.
"""

from __future__ import annotations

import re
import threading
import typing as t
from dataclasses import dataclass, field

KINDS = (
    "status",
    "html",
    "truncated_json",
    "cut_download",
    "reset",
    "delay",
    # bad result files and downloads (issue 13), see simulator.badfiles
    "proxy_page",
    "xml_error",
    "bom",
    "big_cell",
    "duplicate_headers",
    "empty_header",
    "empty_file",
    "content_encoding",
    "trickle",
    # storage only: a 302 to a fresh presigned URL first, or redirects that never end
    "redirect",
    "redirect_loop",
)
#: Kinds whose ``status`` defaults to 200: an error page served as if it were the file.
SERVED_AS_FILE = ("proxy_page", "xml_error")
ENCODINGS = ("gzip", "deflate", "deflate-raw")


@dataclass
class Fault:
    """One switchable fault.

    kind: ``status`` (answer ``status`` with optional ``retry_after`` and ``body``; with
    ``retry_after_date`` the Retry-After is an HTTP date that many seconds after the server's
    own ``Date``, and ``date_skew`` puts the server's clock that many seconds off ours),
    ``html`` (an HTML error page with ``status``, default 500), ``truncated_json`` (the real
    JSON answer cut in the middle), ``cut_download`` (send ``after_bytes`` of the real body, at
    most half of a fixed-length one, then close the connection), ``reset`` (close the socket
    without answering), ``delay`` (sleep ``seconds`` then answer normally).

    Bad files (``simulator.badfiles``): ``proxy_page`` (a proxy's "502 Bad Gateway" HTML page,
    with ``status``, default 200), ``xml_error`` (S3's ``<Error>`` document, default 200),
    ``bom`` (a UTF-8 BOM first), ``big_cell`` (the first data row's first cell becomes
    ``badfiles.big_cell_value(size)``), ``duplicate_headers`` / ``empty_header`` (the CSV
    header renamed), ``empty_file`` (0 bytes), ``content_encoding`` (the body compressed with
    ``encoding``: ``gzip``, ``deflate`` (zlib) or ``deflate-raw`` (raw deflate labelled
    ``deflate``)), ``trickle`` (``tick_bytes`` every ``tick_seconds``, the connection closed
    after ``for_seconds``). Storage only: ``redirect`` (a 302 to a fresh presigned URL of the
    same object on the ``to`` origin, ``same`` or ``other``), ``redirect_loop`` (302s that
    never reach the object).
    """

    kind: str
    vendor: str = "*"
    method: str = "*"
    path: str = ".*"
    times: int = 1
    status: int = 0  # 0: the kind's default (200 for pages served as files, else 500)
    retry_after: str | None = None
    body: str | None = None
    after_bytes: int = 1000
    seconds: float = 0.0
    retry_after_date: float | None = None
    date_skew: float = 0.0
    size: int = 200_000
    encoding: str = "gzip"
    tick_bytes: int = 64
    tick_seconds: float = 0.2
    for_seconds: float = 5.0
    to: str = "same"
    fired: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; one of {ENCODINGS}")
        if self.to not in ("same", "other"):
            raise ValueError(f"redirect target {self.to!r}: 'same' or 'other'")
        if not self.status:
            self.status = 200 if self.kind in SERVED_AS_FILE else 500
        self._pattern = re.compile(self.path)

    def matches(self, vendor: str, method: str, path: str) -> bool:
        return (
            self.fired < self.times
            and self.vendor in ("*", vendor)
            and self.method in ("*", method)
            and self._pattern.search(path) is not None
        )

    def to_dict(self) -> dict[str, t.Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class FaultSet:
    """The faults switched on, shared by all request threads."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, kind: str, **options: t.Any) -> Fault:
        fault = Fault(kind=kind, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(
        self, vendor: str, method: str, path: str, kinds: t.Container[str] | None = None
    ) -> Fault | None:
        """The first unspent fault matching this request (of ``kinds``, when given), counted
        as fired."""
        with self._lock:
            for fault in self._faults:
                if (kinds is None or fault.kind in kinds) and fault.matches(vendor, method, path):
                    fault.fired += 1
                    return fault
        return None

    def fired(self) -> int:
        with self._lock:
            return sum(f.fired for f in self._faults)

    def list(self) -> list[dict[str, t.Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]
