"""Indicative's settings, declared once (see ``tap_segments.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from singer_sdk import typing as th

from tap_segments.settings import SettingsGroup, id_list, setting


@dataclass(frozen=True)
class IndicativeSettings(SettingsGroup):
    base_url: str = setting(
        "indicative_base_url",
        th.StringType,
        title="Indicative base URL",
        description=(
            "Indicative (mParticle Analytics) query API base URL; the credentials are sent "
            "only to this origin, never to the storage of export files."
        ),
        default="https://query.indicative.com",
    )
    api_key: str = setting(
        "indicative_api_key",
        th.StringType,
        title="Indicative API key",
        description="Indicative API key (Basic auth user).",
        secret=True,
    )
    access_token: str = setting(
        "indicative_access_token",
        th.StringType,
        title="Indicative access token",
        description="Indicative access token (Basic auth password).",
        secret=True,
    )
    segment_ids: tuple[str, ...] = id_list(
        "indicative_segment_ids",
        "Indicative segment IDs",
        "Limit to these Indicative segment IDs (default: all segments).",
    )
