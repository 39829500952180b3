"""Kissmetrics' settings, declared once (see ``tap_segments.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from singer_sdk import typing as th

from tap_segments.settings import SettingsGroup, id_list, secret, setting


@dataclass(frozen=True)
class KissmetricsSettings(SettingsGroup):
    api_base_url: str = setting(
        "kissmetrics_api_base_url",
        th.StringType,
        title="Kissmetrics core API base URL",
        description=(
            "Kissmetrics core API base URL (the token is sent only to this origin and the "
            "query one)."
        ),
        default="https://api.kissmetrics.com",
    )
    query_base_url: str = setting(
        "kissmetrics_query_base_url",
        th.StringType,
        title="Kissmetrics query API base URL",
        description="Kissmetrics query API base URL; a run link to any other host stops the run.",
        default="https://query.kissmetrics.com",
    )
    api_token: str = secret(
        "kissmetrics_api_token", "Kissmetrics API token", "Kissmetrics personal API token (Bearer)."
    )
    report_ids: tuple[str, ...] = id_list(
        "kissmetrics_report_ids",
        "Kissmetrics report IDs",
        "Limit to these Kissmetrics report IDs (default: all reports).",
    )
    window_days: int = setting(
        "kissmetrics_window_days",
        th.IntegerType(minimum=1),
        title="Kissmetrics window (days)",
        description="Size in days of each report run's date window.",
        default=1,
        convert=int,
    )
