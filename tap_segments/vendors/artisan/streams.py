"""Artisan streams: apps, segments (child of apps), jobs, profiles and segment members.

``artisan_segment_members`` and, without configured IDs, ``artisan_profiles`` are export
driven: each export is a job (``POST .../segments/{id}`` or ``POST .../users/export``)
polled through ``GET /public/api/jobs/{job_id}`` until done, whose ``result_url`` file
becomes the records. With ``artisan_profile_ids`` / ``artisan_shared_user_ids`` set,
profiles are read directly in batches instead. Every call is the client's
(``vendors/artisan/api.py``); the apps list and each app's segments are requested once.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_segments.exports.engine import ExportAPI, ExportRequest, PollResult
from tap_segments.exports.state import ExportJob
from tap_segments.exports.streams import AsyncExportStream, ExportRowsStream
from tap_segments.streams import VendorStream
from tap_segments.timeutil import parse_timestamp
from tap_segments.vendors.artisan.api import JOB_TIME_FIELDS, ArtisanAPI

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Keep a batch's URL far below the ~2,000 characters proxies and servers commonly accept.
MAX_IDS_QUERY_CHARS = 1500


class ArtisanStream(VendorStream):
    api: ArtisanAPI


class AppsStream(ArtisanStream):
    """The organization's apps (the gem's ``list_apps``)."""

    name = "artisan_apps"
    primary_keys = ("id",)
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self.api.apps()


class SegmentsStream(ArtisanStream):
    """``GET /public/api/apps/{app_id}/segments/`` for each app."""

    name = "artisan_segments"
    primary_keys = ("app_id", "id")
    schema = th.PropertiesList(
        th.Property("app_id", th.StringType, required=True),
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        for app_id in self.api.app_ids():
            yield from self.api.segments(app_id)


JOB_PROPERTIES = th.PropertiesList(
    th.Property("id", th.StringType, required=True),
    th.Property("type", th.StringType),
    th.Property("description", th.StringType),
    th.Property("identifier", th.StringType),
    th.Property("organization_id", th.StringType),
    th.Property("status", th.StringType, description="upper-cased"),
    th.Property("result_url", th.StringType),
    th.Property("created_at", th.DateTimeType),
    th.Property("start", th.DateTimeType),
    th.Property("end", th.DateTimeType),
    th.Property(
        "updated_at",
        th.DateTimeType,
        description=(
            "The vendor's updated_at; a job without one (the gem's flat shape) gets its "
            "end, else start, else created_at."
        ),
    ),
)


def job_updated_at(job: dict[str, t.Any]) -> str | None:
    """The job's newest known time: ``updated_at``, else ``end``, ``start``, ``created_at``."""
    return next((str(job[f]) for f in JOB_TIME_FIELDS if job.get(f)), None)


class JobsStream(ArtisanStream):
    """``GET /public/api/jobs``: every job, incremental on ``updated_at``.

    The gem's flat job shape has no ``updated_at``: such a job gets the newest of its other
    times as ``updated_at`` (``job_updated_at``); a job with no time at all is emitted on
    every run, never dropped.
    """

    name = "artisan_jobs"
    primary_keys = ("id",)
    replication_key = "updated_at"
    schema = JOB_PROPERTIES.to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        since = self.get_starting_timestamp(context)
        for job in self.api.jobs():
            job["updated_at"] = job_updated_at(job)
            if since and job["updated_at"] and parse_timestamp(job["updated_at"]) < since:
                continue
            yield job


PROFILE_PROPERTIES = th.PropertiesList(
    th.Property("app_id", th.StringType, required=True),
    th.Property("identifier", th.StringType, required=True),
    th.Property("identifierSource", th.StringType),
    th.Property("href", th.StringType),
    th.Property("attributes", th.ObjectType(additional_properties=True)),
)


def id_batches(ids: t.Sequence[str]) -> t.Iterator[list[str]]:
    """Consecutive batches of ``ids`` whose comma-joined query value stays short."""
    batch: list[str] = []
    length = 0
    for identifier in ids:
        if batch and length + len(identifier) + 1 > MAX_IDS_QUERY_CHARS:
            yield batch
            batch, length = [], 0
        batch.append(identifier)
        length += len(identifier) + 1
    if batch:
        yield batch


class ArtisanExportStream(ArtisanStream, AsyncExportStream, ExportRowsStream):
    """An Artisan export: the trigger answers a job, polled until its result file is ready."""

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        yield from self.rows_of_files(result.files, {**request.params, "job_id": job.job_id})

    def prefetch_export(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        self.prefetch_rows(result.files, {**request.params, "job_id": job.job_id})


class ProfilesStream(ArtisanExportStream):
    """Profiles: by configured IDs in batches, otherwise one profile export per app."""

    name = "artisan_profiles"
    primary_keys = ("app_id", "identifier")
    schema = PROFILE_PROPERTIES.to_dict()

    @property
    def export_api(self) -> ExportAPI:
        return self.api.profile_exports

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        by_source = {
            "artisan": self.api.settings.profile_ids,
            "custom": self.api.settings.shared_user_ids,
        }
        if not any(by_source.values()):
            yield from super().get_records(context)  # profile exports
            return
        for app_id in self.api.app_ids():
            for source, ids in by_source.items():
                for batch in id_batches(ids):
                    for profile in self.api.profiles(app_id, source, batch):
                        yield {**profile, "app_id": app_id}

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        for app_id in self.api.app_ids():
            yield ExportRequest(key=app_id, params={"app_id": app_id})


class SegmentMembersStream(ArtisanExportStream):
    """The rows (or objects) of each segment's export file."""

    name = "artisan_segment_members"
    primary_keys = ("app_id", "segment_id", "job_id", "row_number")
    schema = th.PropertiesList(
        th.Property("app_id", th.StringType, required=True),
        th.Property("segment_id", th.StringType, required=True),
        th.Property("job_id", th.StringType, required=True),
        th.Property("row_number", th.IntegerType, required=True),
    ).to_dict()

    @property
    def export_api(self) -> ExportAPI:
        return self.api.segment_exports

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        for app_id in self.api.app_ids():
            for segment in self.api.segments(app_id):
                params = {"app_id": app_id, "segment_id": str(segment["id"])}
                yield ExportRequest(key=f"{app_id}/{params['segment_id']}", params=params)
