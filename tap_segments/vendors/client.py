"""The base of the vendor clients: one object per vendor per run, shared by its streams.

A client holds the vendor's typed settings and the shared ones, its ``HttpClient`` (session,
credential scope, status and retry policy, request metrics), and a cache of list calls, so
that each list endpoint is requested at most once per sync whichever streams need it. A
vendor says only how it authenticates (``authenticator``) and where its API is
(``api_base_urls``): its credentials go there and nowhere else.
"""

from __future__ import annotations

import threading
import typing as t

from tap_segments.http import ApiScope, HttpClient

if t.TYPE_CHECKING:
    import logging

    from singer_sdk.authenticators import APIAuthenticatorBase

    from tap_segments.settings import CommonSettings, SettingsGroup

T = t.TypeVar("T")


class VendorClient:
    """What every vendor client has; subclasses build ``self.http`` and the vendor's calls."""

    #: Human name of the vendor, used in every message ("Indicative").
    vendor_label: t.ClassVar[str] = ""
    #: The vendor's setting prefix ("acoustic").
    vendor_name: t.ClassVar[str] = ""
    #: The setting a message names when a call leaves the API (a redirect elsewhere).
    base_url_setting: t.ClassVar[str] = ""
    #: Headers every request to the vendor carries (not credentials).
    headers: t.ClassVar[dict[str, str]] = {}

    def __init__(
        self, settings: SettingsGroup, common: CommonSettings, logger: logging.Logger
    ) -> None:
        self.settings = settings
        self.common = common
        self.logger = logger
        self._cache: dict[t.Hashable, t.Any] = {}
        self._cache_lock = threading.Lock()
        self.http = HttpClient(
            vendor_label=self.vendor_label,
            credential_settings=type(settings).credential_names(),
            base_url_setting=self.base_url_setting,
            authenticator=self.authenticator(),
            scope=ApiScope(*self.api_base_urls()),
            settings=common,
            logger=logger,
            headers=self.headers,
        )

    def authenticator(self) -> APIAuthenticatorBase:
        """How the vendor's credentials are attached to a request (an SDK authenticator)."""
        raise NotImplementedError

    def api_base_urls(self) -> list[str]:
        """The vendor's API: where its credentials may go."""
        raise NotImplementedError

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
