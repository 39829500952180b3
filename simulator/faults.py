"""Faults tests switch on: wrong status codes, HTML pages, cut bodies, resets, delays.

A fault matches a vendor, an HTTP method and a path regex, and fires ``times`` times (then
it is spent). The server asks ``FaultSet.take(...)`` before answering each request.
"""

from __future__ import annotations

import re
import threading
import typing as t
from dataclasses import dataclass, field

KINDS = ("status", "html", "truncated_json", "cut_download", "reset", "delay")


@dataclass
class Fault:
    """One switchable fault.

    kind: ``status`` (answer ``status`` with optional ``retry_after`` and ``body``),
    ``html`` (a text/html error page with ``status``: 200 for a page posing as
    success, default 500), ``truncated_json`` (the real
    JSON answer cut in the middle), ``cut_download`` (send ``after_bytes`` of the real body, at
    most half of a fixed-length one, then close the connection), ``reset`` (close the socket
    without answering), ``delay`` (sleep ``seconds`` then answer normally).
    """

    kind: str
    vendor: str = "*"
    method: str = "*"
    path: str = ".*"
    times: int = 1
    status: int = 500
    retry_after: str | None = None
    body: str | None = None
    after_bytes: int = 1000
    seconds: float = 0.0
    fired: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
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

    def take(self, vendor: str, method: str, path: str) -> Fault | None:
        """The first unspent fault matching this request, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(vendor, method, path):
                    fault.fired += 1
                    return fault
        return None

    def fired(self) -> int:
        with self._lock:
            return sum(f.fired for f in self._faults)

    def list(self) -> list[dict[str, t.Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]
