"""The vendor registry: one package per vendor, each declaring its settings, client and streams.

A vendor is enabled when every one of its credential settings is set (and, with the
``vendors`` setting, when it is listed there); its streams are discovered only then.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    import logging

    from tap_segments.settings import CommonSettings, SettingsGroup
    from tap_segments.streams import VendorStream
    from tap_segments.vendors.client import VendorClient


@dataclass(frozen=True)
class Vendor:
    """A vendor the tap reads from."""

    name: str
    label: str
    settings: type[SettingsGroup]
    client: t.Callable[[t.Any, CommonSettings, logging.Logger], VendorClient]
    streams: tuple[type[VendorStream], ...]

    @property
    def credential_settings(self) -> tuple[str, ...]:
        return self.settings.credential_names()

    def is_configured(self, config: t.Mapping[str, t.Any]) -> bool:
        return all(config.get(setting) for setting in self.credential_settings)

    def make_client(
        self, config: t.Mapping[str, t.Any], common: CommonSettings, logger: logging.Logger
    ) -> VendorClient:
        return self.client(self.settings.from_config(config), common, logger)


def _load_vendors() -> tuple[Vendor, ...]:
    from tap_segments.vendors.acoustic import VENDOR as ACOUSTIC
    from tap_segments.vendors.artisan import VENDOR as ARTISAN
    from tap_segments.vendors.indicative import VENDOR as INDICATIVE
    from tap_segments.vendors.kissmetrics import VENDOR as KISSMETRICS

    return (ARTISAN, INDICATIVE, KISSMETRICS, ACOUSTIC)


VENDORS: tuple[Vendor, ...] = _load_vendors()


def enabled_vendors(config: t.Mapping[str, t.Any], only: t.Collection[str] = ()) -> list[Vendor]:
    """Vendors whose credentials are set, limited to ``only`` (names) when given."""
    return [v for v in VENDORS if v.is_configured(config) and (not only or v.name in only)]
