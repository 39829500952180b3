"""Indicative's settings, declared once (see ``tap_segments.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from singer_sdk import typing as th

from tap_segments.settings import SettingsGroup, id_list, secret, setting


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
    api_key: str = secret(
        "indicative_api_key", "Indicative API key", "Indicative API key (Basic auth user)."
    )
    access_token: str = secret(
        "indicative_access_token",
        "Indicative access token",
        "Indicative access token (Basic auth password).",
    )
    segment_ids: tuple[str, ...] = id_list(
        "indicative_segment_ids",
        "Indicative segment IDs",
        "Limit to these Indicative segment IDs (default: all segments).",
    )
