"""Artisan streams: apps, segments (child of apps), jobs, profiles and segment members.

``artisan_segment_members`` and, without configured IDs, ``artisan_profiles`` are export
driven: each export is a job (``POST .../segments/{id}`` or ``POST .../users/export``)
polled through ``GET /public/api/jobs/{job_id}`` until done, whose ``result_url`` file
becomes the records. With ``artisan_profile_ids`` / ``artisan_shared_user_ids`` set,
profiles are read directly in batches instead.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_segments.exports.engine import ExportJob, ExportRequest, PollResult, parse_timestamp
from tap_segments.exports.streams import AsyncExportStream, ExportRowsStream
from tap_segments.vendors.artisan.client import (
    APPS_PATH,
    JOBS_PATH,
    ArtisanStream,
    job_list,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Keep a batch's URL far below the ~2,000 characters proxies and servers commonly accept.
MAX_IDS_QUERY_CHARS = 1500


class AppsStream(ArtisanStream):
    """The organization's apps (the gem's ``list_apps``)."""

    name = "artisan_apps"
    path = APPS_PATH
    primary_keys = ("id",)
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self.list_apps()

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"app_id": record["id"]}


class SegmentsStream(ArtisanStream):
    """``GET /public/api/apps/{app_id}/segments/`` for each app."""

    name = "artisan_segments"
    parent_stream_type = AppsStream
    state_partitioning_keys: t.ClassVar[list[str]] = []  # full table: no state per app
    primary_keys = ("app_id", "id")
    schema = th.PropertiesList(
        th.Property("app_id", th.StringType, required=True),
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        yield from self.list_segments(str(context["app_id"]))


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
    th.Property("updated_at", th.DateTimeType),
)


class JobsStream(ArtisanStream):
    """``GET /public/api/jobs``: every job, incremental on ``updated_at``."""

    name = "artisan_jobs"
    path = JOBS_PATH
    primary_keys = ("id",)
    replication_key = "updated_at"
    schema = JOB_PROPERTIES.to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        since = self.get_starting_timestamp(context)
        for job in job_list(self.send_json("GET", JOBS_PATH)):
            updated = job.get("updated_at")
            if since and updated and parse_timestamp(updated) < since:
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

    def trigger_path(self, request: ExportRequest) -> str:
        raise NotImplementedError

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        path = self.trigger_path(request)
        callback = self.config.get("artisan_callback_url")
        answer = self.send_json(
            "POST", path, json_body={"callbackUrl": callback} if callback else None
        )
        job_id = self.triggered_job_id(answer)
        if not job_id:
            raise self.malformed(f"POST {path}", "a job id")
        return self.new_job(request.key, job_id)

    def poll_export(self, job: ExportJob) -> PollResult:
        return self.job_status(job.job_id, f"export of {job.key}")

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        fields = {**request.params, "job_id": job.job_id}
        yield from self.rows_of_files(result.files, fields)


class ProfilesStream(ArtisanExportStream):
    """Profiles: by configured IDs in batches, otherwise one profile export per app."""

    name = "artisan_profiles"
    primary_keys = ("app_id", "identifier")
    schema = PROFILE_PROPERTIES.to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        by_source = {
            "artisan": list(self.config.get("artisan_profile_ids") or []),
            "custom": list(self.config.get("artisan_shared_user_ids") or []),
        }
        if not any(by_source.values()):
            yield from super().get_records(context)  # profile exports
            return
        for app in self.list_apps():
            for source, ids in by_source.items():
                for batch in id_batches(ids):
                    yield from self.profiles_by_id(str(app["id"]), source, batch)

    def profiles_by_id(self, app_id: str, source: str, ids: list[str]) -> t.Iterator[dict]:
        path = f"{APPS_PATH}/{app_id}/users"
        params = {"ids": ",".join(ids), **({"source": "custom"} if source == "custom" else {})}
        body = self.send_json("GET", path, params=params)
        found = body.get("response") if isinstance(body, dict) and "response" in body else body
        for profile in found if isinstance(found, list) else [found]:
            if isinstance(profile, dict) and profile.get("identifier"):
                yield {**profile, "app_id": app_id}

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        for app in self.list_apps():
            yield ExportRequest(key=str(app["id"]), params={"app_id": str(app["id"])})

    def trigger_path(self, request: ExportRequest) -> str:
        return f"{APPS_PATH}/{request.params['app_id']}/users/export"


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

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        for app in self.list_apps():
            for segment in self.list_segments(str(app["id"])):
                params = {"app_id": str(app["id"]), "segment_id": str(segment["id"])}
                yield ExportRequest(key=f"{params['app_id']}/{params['segment_id']}", params=params)

    def trigger_path(self, request: ExportRequest) -> str:
        return f"{APPS_PATH}/{request.params['app_id']}/segments/{request.params['segment_id']}"
