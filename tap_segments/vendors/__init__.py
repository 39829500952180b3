"""The vendor registry: one package per vendor, each describing when it is enabled.

A vendor is enabled when every one of its ``required_settings`` is set; its streams are
discovered only then.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from singer_sdk import Stream


@dataclass(frozen=True)
class Vendor:
    """A vendor the tap reads from."""

    name: str
    label: str
    required_settings: tuple[str, ...]
    streams: tuple[type[Stream], ...]
    #: A cheap GET (path on the first stream's base URL) that proves the credentials work.
    check_path: str = ""

    def is_enabled(self, config: t.Mapping[str, t.Any]) -> bool:
        return all(config.get(setting) for setting in self.required_settings)


def _load_vendors() -> tuple[Vendor, ...]:
    from tap_segments.vendors.acoustic import VENDOR as ACOUSTIC
    from tap_segments.vendors.artisan import VENDOR as ARTISAN
    from tap_segments.vendors.indicative import VENDOR as INDICATIVE
    from tap_segments.vendors.kissmetrics import VENDOR as KISSMETRICS

    return (ARTISAN, INDICATIVE, KISSMETRICS, ACOUSTIC)


VENDORS: tuple[Vendor, ...] = _load_vendors()


def enabled_vendors(config: t.Mapping[str, t.Any]) -> list[Vendor]:
    return [vendor for vendor in VENDORS if vendor.is_enabled(config)]
