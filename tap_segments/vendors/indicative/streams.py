"""Indicative streams: ``indicative_segments``, ``indicative_segment_exports`` and
``indicative_segment_members``.

``indicative_segment_exports`` drives the exports: it exports only segments whose
``lastRun`` moved past what was last exported (``start_date`` is the first bookmark, so a
segment last run before it is not exported; a rerun with nothing new triggers no export),
and emits one record per finished export. ``indicative_segment_members`` is its child: for
each finished export it streams the rows of the export file, which the client already knows
(an export known complete is not polled again).
"""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th

from tap_segments.errors import ExportFileGoneError
from tap_segments.exports.download import ExportFile, open_result_file
from tap_segments.exports.engine import ExportAPI, ExportRequest, PollResult
from tap_segments.exports.state import ExportJob
from tap_segments.exports.streams import AsyncExportStream, ExportRowsStream
from tap_segments.streams import VendorStream
from tap_segments.timeutil import parse_timestamp
from tap_segments.vendors.indicative.api import EXPORT_STATUS_PATH, IndicativeAPI

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


class IndicativeStream(VendorStream):
    api: IndicativeAPI


class SegmentsStream(IndicativeStream):
    """``GET /service/v1/segments/list``, incremental on ``lastRun``."""

    name = "indicative_segments"
    primary_keys = ("segmentId",)
    replication_key = "lastRun"
    schema = SEGMENT_PROPERTIES.to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        since = self.get_starting_timestamp(context)
        for segment in self.api.segments():
            last_run = segment.get("lastRun")
            if since and last_run and parse_timestamp(last_run) < since:
                continue
            yield segment


def needs_export(
    segment: dict[str, t.Any], exported: t.Mapping[str, str | None], start: dt.datetime | None
) -> bool:
    """Whether a segment's members must be exported now.

    Exported before: only when its ``lastRun`` moved past the one exported. Never exported:
    when it was never refreshed (no ``lastRun``: a static segment), or refreshed at or after
    ``start_date`` (the first bookmark).
    """
    last_run = segment.get("lastRun")
    segment_id = str(segment["segmentId"])
    if segment_id in exported:
        before = exported[segment_id]
        if last_run is None:
            return False
        return before is None or parse_timestamp(last_run) > parse_timestamp(before)
    return last_run is None or start is None or parse_timestamp(last_run) >= start


class SegmentExportsStream(IndicativeStream, AsyncExportStream):
    """One record per export request, with its final status; drives the exports."""

    name = "indicative_segment_exports"
    full_snapshot = False  # each run emits only what is new since its state
    primary_keys = ("exportId",)
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
    def export_api(self) -> ExportAPI:
        return self.api

    @property
    def segments_exported(self) -> dict[str, str | None]:
        return t.cast(dict, self.stream_state.setdefault(EXPORTED_KEY, {}))

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        # This stream has no replication key of its own: start_date is read directly.
        start_date = self.common.start_date
        start = parse_timestamp(start_date) if start_date else None
        in_flight = set(self.exports.keys())
        for segment in self.api.segments():
            segment_id = str(segment["segmentId"])
            if segment_id in in_flight or needs_export(segment, self.segments_exported, start):
                yield ExportRequest(key=segment_id, params={"segment": segment})

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        for file in result.files:  # fail here, where the export can be triggered again
            open_result_file(
                self.api.http,
                file,
                s3_endpoint_url=self.common.s3_endpoint_url,
                first_byte_only=True,
            ).close()
        yield self.export_record(request, job, result)  # its members are read now, by the child
        gone = self.api.files_gone.pop(job.job_id, None)
        if gone is not None:  # the file went before the members were read: export again
            raise gone

    def export_record(self, request: ExportRequest, job: ExportJob, result: PollResult) -> dict:
        detail = dict(result.detail)
        segment = detail.get("segment") or request.params["segment"]
        detail.setdefault("exportId", job.job_id)
        detail["segmentId"] = (segment or {}).get("segmentId", request.key)
        if detail.get("filename"):
            detail["filename"] = str(detail["filename"]).split("?", 1)[0]  # no signatures
        return detail

    def prefetch_export(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        context = self.get_child_context(self.export_record(request, job, result), None)
        for members in self.row_readers():
            if isinstance(members, SegmentMembersStream):
                members.prefetch_rows(*members.export_rows(context))

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> bool:
        self.segments_exported[request.key] = job.data.get("lastRun")
        return True

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"segmentId": record["segmentId"], "exportId": record["exportId"]}


class SegmentMembersStream(IndicativeStream, ExportRowsStream):
    """The rows of each finished export file, one record per row."""

    name = "indicative_segment_members"
    full_snapshot = False  # each run emits only what is new since its state
    parent_stream_type = SegmentExportsStream
    state_partitioning_keys: t.ClassVar[list[str]] = []  # one state, not one per export
    primary_keys = ("segmentId", "exportId", "row_number")
    schema = th.PropertiesList(
        th.Property("segmentId", th.StringType, required=True),
        th.Property("exportId", th.StringType, required=True),
        th.Property("row_number", th.IntegerType, required=True),
    ).to_dict()

    def export_rows(self, context: Context) -> tuple[list[ExportFile], dict[str, t.Any]]:
        """The files of the export ``context`` names, and the fields its records get."""
        export_id = str(context["exportId"])
        job = ExportJob.new(str(context["segmentId"]), export_id)
        result = self.api.poll_export(job)  # known complete: answered from the client
        if not result.files:
            raise self.api.http.malformed(
                f"GET {EXPORT_STATUS_PATH} ({export_id})", "a downloadable file"
            )
        return result.files, {"segmentId": context["segmentId"], "exportId": export_id}

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        files, parent_fields = self.export_rows(context)
        export_id = parent_fields["exportId"]
        label = f"Indicative export {export_id} for {context['segmentId']}"
        try:
            yield from self.rows_of_files(
                files,
                parent_fields,
                export_label=label,
                export=(str(context["segmentId"]), export_id),
            )
        except ExportFileGoneError as exc:
            # Expired or deleted since the exports stream checked it: that stream, which
            # drives the exports, triggers the export again (once) when this returns.
            self.api.files_gone[export_id] = exc
