"""Indicative streams: ``indicative_segments``, ``indicative_segment_exports`` and
``indicative_segment_members``.

``indicative_segment_exports`` drives the exports: it exports only segments whose
``lastRun`` moved past what was last exported (so a rerun with nothing new triggers no
export), and emits one record per finished export. ``indicative_segment_members`` is its
child: for each finished export it streams the rows of the export file.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th

from tap_segments.exports.engine import ExportJob, ExportRequest, PollResult, parse_timestamp
from tap_segments.exports.streams import AsyncExportStream, ExportRowsStream
from tap_segments.vendors.indicative.client import (
    EXPORT_PATH,
    SEGMENTS_PATH,
    IndicativeStream,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Per segment, the ``lastRun`` whose members were last exported (None: never refreshed).
EXPORTED_KEY = "segments_exported"

SEGMENT_PROPERTIES = th.PropertiesList(
    th.Property("segmentId", th.StringType, required=True),
    th.Property("name", th.StringType),
    th.Property("description", th.StringType),
    th.Property("category", th.StringType),
    th.Property("projectId", th.StringType),
    th.Property("type", th.StringType),
    th.Property("lastRun", th.DateTimeType),
)


class SegmentsStream(IndicativeStream):
    """``GET /service/v1/segments/list``, incremental on ``lastRun``."""

    name = "indicative_segments"
    path = SEGMENTS_PATH
    primary_keys = ("segmentId",)
    replication_key = "lastRun"
    schema = SEGMENT_PROPERTIES.to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        since = self.get_starting_timestamp(context)
        for segment in self.list_segments():
            last_run = segment.get("lastRun")
            if since and last_run and parse_timestamp(last_run) < since:
                continue
            yield segment


class SegmentExportsStream(IndicativeStream, AsyncExportStream):
    """One record per export request, with its final status; drives the exports."""

    name = "indicative_segment_exports"
    primary_keys = ("exportId",)
    export_retention = dt.timedelta(hours=48)
    schema = th.PropertiesList(
        th.Property("exportId", th.StringType, required=True),
        th.Property("segmentId", th.StringType),
        th.Property("status", th.StringType),
        th.Property("projectId", th.StringType),
        th.Property("startTime", th.DateTimeType),
        th.Property("endTime", th.DateTimeType),
        th.Property("filename", th.StringType),
        th.Property("segment", th.ObjectType(*SEGMENT_PROPERTIES.wrapped.values())),
    ).to_dict()

    @property
    def segments_exported(self) -> dict[str, str | None]:
        return t.cast(dict, self.stream_state.setdefault(EXPORTED_KEY, {}))

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        start = self.get_starting_timestamp(context)
        for segment in self.list_segments():
            segment_id = str(segment["segmentId"])
            if segment_id in self.exports_in_flight or self._needs_export(segment, start):
                yield ExportRequest(key=segment_id, params={"segment": segment})

    def _needs_export(self, segment: dict[str, t.Any], start: dt.datetime | None) -> bool:
        last_run = segment.get("lastRun")
        segment_id = str(segment["segmentId"])
        if segment_id in self.segments_exported:
            exported = self.segments_exported[segment_id]
            if last_run is None:
                return False
            return exported is None or parse_timestamp(last_run) > parse_timestamp(exported)
        return last_run is None or start is None or parse_timestamp(last_run) >= start

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        body = {"segmentId": request.key, "outputFormat": "csv"}
        answer = self.send_json("POST", EXPORT_PATH, json_body=body)
        if not isinstance(answer, dict) or not answer.get("exportId"):
            raise self.malformed(f"POST {EXPORT_PATH}", "an export object with an exportId")
        last_run = request.params["segment"].get("lastRun")
        return self.new_job(request.key, str(answer["exportId"]), lastRun=last_run)

    def poll_export(self, job: ExportJob) -> PollResult:
        return self.export_status(job.job_id)

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        for file in result.files:  # fail here, where the export can be triggered again
            self.probe_file(file.url, authenticated=file.authenticated, name=file.name)
        detail = dict(result.detail)
        segment = detail.get("segment") or request.params["segment"]
        detail.setdefault("exportId", job.job_id)
        detail["segmentId"] = (segment or {}).get("segmentId", request.key)
        if detail.get("filename"):
            detail["filename"] = str(detail["filename"]).split("?", 1)[0]  # no signatures
        yield detail

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        self.segments_exported[request.key] = job.data.get("lastRun")

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"segmentId": record["segmentId"], "exportId": record["exportId"]}


class SegmentMembersStream(IndicativeStream, ExportRowsStream):
    """The rows of each finished export file, one record per row."""

    name = "indicative_segment_members"
    parent_stream_type = SegmentExportsStream
    state_partitioning_keys: t.ClassVar[list[str]] = []  # one state, not one per export
    primary_keys = ("segmentId", "exportId", "row_number")
    schema = th.PropertiesList(
        th.Property("segmentId", th.StringType, required=True),
        th.Property("exportId", th.StringType, required=True),
        th.Property("row_number", th.IntegerType, required=True),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        export_id = str(context["exportId"])
        result = self.export_status(export_id)
        if not result.files:
            raise self.malformed(f"GET {EXPORT_PATH}{export_id}", "a downloadable file")
        parent_fields = {"segmentId": context["segmentId"], "exportId": export_id}
        yield from self.rows_of_files(result.files, parent_fields)
