"""Acoustic Exchange's settings, declared once (see ``tap_segments.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from singer_sdk import typing as th

from tap_segments.settings import SettingsGroup, secret, setting

#: The job categories the doc names ("SEGMENT_EXPORT, IDENTITY_IMPORT, or SEGMENT_POPULATE_DB").
JOB_CATEGORIES = ("SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB")


def categories(value: list[str]) -> tuple[str, ...]:
    """Upper-cased (the API's words), without repeats."""
    return tuple(dict.fromkeys(str(c).strip().upper() for c in value if str(c).strip()))


@dataclass(frozen=True)
class AcousticSettings(SettingsGroup):
    base_url: str = setting(
        "acoustic_base_url",
        th.StringType,
        title="Acoustic Exchange base URL",
        description="The Acoustic Exchange account's assigned base URL (required to enable).",
        credential=True,
    )
    auth_key: str = secret(
        "acoustic_auth_key",
        "Acoustic Exchange authentication key",
        "Acoustic Exchange authentication key (Bearer).",
    )
    job_categories: tuple[str, ...] = setting(
        "acoustic_job_categories",
        th.ArrayType(th.StringType(allowed_values=list(JOB_CATEGORIES))),
        title="Acoustic job categories",
        description="Job categories to read (one partition per category in partitioned runs).",
        default=JOB_CATEGORIES,
        convert=categories,
    )
    endpoint_id: str | None = setting(
        "acoustic_endpoint_id",
        th.StringType,
        title="Acoustic endpoint ID",
        description=(
            "Only jobs of this endpoint: sent as both `endpointID` (the doc's parameter table) "
            "and `endpointId` (its examples), and checked on every job returned."
        ),
        convert=str,
    )
    mark_complete: bool = setting(
        "acoustic_mark_complete",
        th.BooleanType,
        title="Acoustic: mark jobs complete",
        description=(
            "After every file of a job is downloaded, mark the job complete at Acoustic "
            "(PUT /v1/jobs/{id}/status/complete), which deletes its files there. Requires "
            "acoustic_endpoint_id: only jobs whose destination is that endpoint are marked. "
            "Opt-in: it changes vendor data, and it follows the tap's emission of the rows, "
            "not the target's commit: if the load then fails, the files are gone at Acoustic."
        ),
        default=False,
        convert=bool,
    )
