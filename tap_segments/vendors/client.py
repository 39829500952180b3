"""The base of the vendor clients: one object per vendor per run, shared by its streams.

A client holds the vendor's typed settings and the shared ones, its ``HttpClient`` (session,
credential scope, status and retry policy, request metrics), and a cache of list calls, so
that each list endpoint is requested at most once per sync whichever streams need it.
"""

from __future__ import annotations

import threading
import typing as t

if t.TYPE_CHECKING:
    import logging

    from tap_segments.http import HttpClient
    from tap_segments.settings import CommonSettings

T = t.TypeVar("T")


class VendorClient:
    """What every vendor client has; subclasses build ``self.http`` and the vendor's calls."""

    #: Human name of the vendor, used in every message ("Indicative").
    vendor_label: t.ClassVar[str] = ""
    #: The vendor's setting prefix ("acoustic").
    vendor_name: t.ClassVar[str] = ""
    http: HttpClient

    def __init__(self, settings: t.Any, common: CommonSettings, logger: logging.Logger) -> None:
        self.settings = settings
        self.common = common
        self.logger = logger
        self._cache: dict[t.Hashable, t.Any] = {}
        self._cache_lock = threading.Lock()

    def once(self, key: t.Hashable, fetch: t.Callable[[], T]) -> T:
        """``fetch()``'s answer for ``key``, requested once per run (failures are not kept)."""
        with self._cache_lock:
            if key in self._cache:
                return t.cast(T, self._cache[key])
        value = fetch()
        with self._cache_lock:
            return t.cast(T, self._cache.setdefault(key, value))

    def check(self) -> str:
        """One cheap request that proves the credentials work; returns what was asked."""
        raise NotImplementedError
