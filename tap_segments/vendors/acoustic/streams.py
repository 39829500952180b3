"""Acoustic Exchange streams: ``acoustic_jobs``, ``acoustic_scheduled_jobs`` and
``acoustic_segment_data``.

``acoustic_segment_data`` reads READY_FOR_DOWNLOAD SEGMENT_EXPORT jobs through the shared
engine: such a job already names its CSV files, so there is nothing to trigger or poll.
Each file is streamed through the shared readers (gzip, each file's own header, resumed
downloads). Files fully emitted are remembered per job in the engine's state
(``files_done``), written right after each file's last row, so a rerun never emits them
again. The tap is read-only unless ``acoustic_mark_complete`` is set; then, and only after
every file of a job was emitted, and only for jobs whose destination is
``acoustic_endpoint_id``, it marks the job complete. It never calls the upload, fail or
delete endpoints.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_segments.errors import ExportFileGoneError
from tap_segments.exports.download import ExportFile
from tap_segments.exports.engine import ExportAPI, ExportRequest, PollResult
from tap_segments.exports.state import ExportJob
from tap_segments.exports.streams import AsyncExportStream, ExportRowsStream
from tap_segments.streams import VendorStream
from tap_segments.timeutil import epoch_millis
from tap_segments.vendors.acoustic.api import (
    FINAL_STATUSES,
    READY_FOR_DOWNLOAD,
    SEGMENT_EXPORT,
    AcousticAPI,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: acoustic_jobs partition state: jobs emitted while not final, emitted again until they are.
OPEN_JOBS_KEY = "open_jobs"

# The doc shows these only as null or as placeholders: their type is not documented, so any
# JSON value is accepted (a type list, not `{}`: that trips the SDK's own test suite).
Undocumented = th.CustomType({"type": ["string", "number", "boolean", "object", "array", "null"]})

SCHEDULE_DETAILS = th.ObjectType(
    th.Property("runNow", th.BooleanType),
    th.Property("runRepeat", th.BooleanType),
    th.Property("daysOfWeek", Undocumented),
    th.Property("daysOfMonth", Undocumented),
    th.Property("monthsOfYear", Undocumented),
    th.Property("year", Undocumented),
    th.Property("startHour", th.StringType),
    th.Property("startMinute", th.StringType),
    th.Property("startSecond", th.StringType),
    th.Property("startDate", th.StringType),
    th.Property("endDate", Undocumented),
    th.Property("timeSliceStartDate", Undocumented),
    th.Property("timeSliceEndDate", Undocumented),
    additional_properties=True,
)

JOB_SCHEMA = th.PropertiesList(
    th.Property("jobCategory", th.StringType, required=True),
    th.Property("jobId", th.IntegerType, required=True),
    th.Property("scheduledJobId", th.IntegerType),
    th.Property("status", th.StringType),
    th.Property("subStatus", th.StringType),
    th.Property("errorDetails", th.StringType, description="Text of the error, if any."),
    th.Property("jobName", th.StringType),
    th.Property("accountId", th.IntegerType),
    th.Property("segmentDataFiles", th.ArrayType(th.StringType)),
    th.Property("segmentDateFiles", th.ArrayType(th.StringType)),
    th.Property("segmentDataFormat", th.StringType),
    th.Property("destinationSegmentID", Undocumented),
    th.Property("destinationSegmentName", th.StringType),
    th.Property("destinationSegmentDescription", th.StringType),
    th.Property("destinationEndpointID", th.IntegerType),
    th.Property("exportCategory", th.StringType),
    th.Property("producerEndpointID", th.IntegerType),
    th.Property("producerSegmentID", th.IntegerType),
    th.Property("producerSegmentIDString", th.StringType),
    th.Property("updateIdentities", th.BooleanType),
    th.Property("sourceIdentifiers", Undocumented),
    th.Property("destinationIdentifier", Undocumented),
    th.Property("attributeMappings", th.ObjectType(additional_properties=True)),
    th.Property("identityMappings", th.ObjectType(additional_properties=True)),
    th.Property("shareAction", Undocumented),
    th.Property("started", th.IntegerType, description="Epoch milliseconds, as the vendor sends."),
    th.Property("started_iso", th.DateTimeType, description="`started` as ISO-8601 (UTC)."),
    th.Property("ended", th.IntegerType, description="Epoch milliseconds; null while running."),
    th.Property("ended_iso", th.DateTimeType, description="`ended` as ISO-8601 (UTC)."),
    th.Property("scheduleDetails", SCHEDULE_DETAILS),
    th.Property("translatedRecordCount", th.IntegerType),
    th.Property("sourceRecordCount", th.IntegerType),
    th.Property("destinationRecordCount", th.IntegerType),
    additional_properties=True,  # fields the vendor adds later are kept, not dropped
).to_dict()


class AcousticStream(VendorStream):
    api: AcousticAPI


class JobsStream(AcousticStream):
    """``GET /v1/jobs/{jobCategory}`` per configured category, incremental on ``started``.

    ``started`` is epoch milliseconds, so the bookmark is a number; ``start_date`` is turned
    into epoch milliseconds. The list has no server-side date filter: jobs are filtered
    here. A job emitted while not final (READY_FOR_DOWNLOAD, RUNNING, ...) is emitted again
    on later runs until it is seen final, so its last status is never missed even though its
    ``started`` is behind the bookmark.
    """

    name = "acoustic_jobs"
    primary_keys = ("jobCategory", "jobId")
    replication_key = "started"
    schema = JOB_SCHEMA

    @property
    def partitions(self) -> list[dict]:
        return [{"jobCategory": category} for category in self.api.settings.job_categories]

    def compare_start_date(self, value: str, start_date_value: str) -> t.Any:
        """The bookmark or ``start_date``, whichever is later, as epoch milliseconds."""
        return max(epoch_millis(value) or 0, epoch_millis(start_date_value) or 0)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        category = str(context["jobCategory"])
        since = epoch_millis(self.get_starting_replication_key_value(context))
        state = self.get_context_state(context)
        was_open = {str(job_id) for job_id in state.get(OPEN_JOBS_KEY, [])}
        still_open: list[str] = []
        for job in self.api.jobs(category):
            job_id = str(job["jobId"])
            started = job.get("started")
            behind = started is not None and since is not None and started < since
            if behind and job_id not in was_open:
                continue
            if str(job.get("status") or "").upper() not in FINAL_STATUSES:
                still_open.append(job_id)
            yield job
        state[OPEN_JOBS_KEY] = still_open


class ScheduledJobsStream(AcousticStream):
    """``GET /v1/scheduledjobs/{jobcategory}`` per configured category, full table."""

    name = "acoustic_scheduled_jobs"
    primary_keys = ("jobId",)
    schema = th.PropertiesList(
        th.Property("jobId", th.IntegerType, required=True),
        th.Property("state", th.StringType),
        th.Property("jobCategory", th.StringType),
        th.Property("jobName", th.StringType),
        th.Property("accountId", th.IntegerType),
        th.Property("active", th.IntegerType, description="1 active, 2 inactive."),
        th.Property("errorDetails", th.StringType, description="Text of the error, if any."),
        additional_properties=True,
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        for category in self.api.settings.job_categories:
            yield from self.api.scheduled_jobs(category)


class SegmentDataStream(AcousticStream, AsyncExportStream, ExportRowsStream):
    """Rows of every file of READY_FOR_DOWNLOAD SEGMENT_EXPORT jobs, one record per row.

    ``row_number`` counts from 1 in each file (the key includes ``file_name``), so a file
    read again yields the same keys whatever happened to the job's other files.
    """

    name = "acoustic_segment_data"
    full_snapshot = False  # each run emits only what is new since its state
    primary_keys = ("jobId", "file_name", "row_number")
    schema = th.PropertiesList(
        th.Property("jobId", th.IntegerType, required=True),
        th.Property("file_name", th.StringType, required=True),
        th.Property("row_number", th.IntegerType, required=True),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._missing: dict[str, list[str]] = {}  # per job: files that answered 404

    @property
    def export_api(self) -> ExportAPI:
        return self.api.ready_exports

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        if SEGMENT_EXPORT not in self.api.settings.job_categories:
            # Only SEGMENT_EXPORT jobs have files: a run (a partition) configured for the other
            # categories reads none, so partitions by category never read a file twice.
            self.logger.info(
                "Acoustic Exchange: acoustic_job_categories leaves out SEGMENT_EXPORT: no "
                "segment data files are read."
            )
            return
        for job in self.api.jobs(SEGMENT_EXPORT):
            # Filtered here: the list is read once, for every status.
            if str(job.get("status")).upper() == READY_FOR_DOWNLOAD:
                yield ExportRequest(key=str(job["jobId"]), params={"job": job})

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        """Rows of every file of the job not emitted before, file by file."""
        missing = self._missing.setdefault(request.key, [])
        done = self.exports.files_done(request.key)
        for file in result.files:
            file_name = file.file_name
            if file_name in done:
                continue
            try:
                yield from self.rows_of_files([file], self.file_fields(request, file))
            except ExportFileGoneError:
                self.logger.warning(
                    "Acoustic Exchange: job %s file %s answered 404 (already deleted?); "
                    "skipped, the job's other files still load.",
                    job.job_id,
                    file_name,
                )
                missing.append(file_name)
                continue
            self.exports.file_done(request.key, file_name)

    def file_fields(self, request: ExportRequest, file: ExportFile) -> dict[str, t.Any]:
        return {"jobId": request.params["job"]["jobId"], "file_name": file.file_name}

    def prefetch_export(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        done = self.exports.files_done(request.key)
        for file in result.files:
            if file.file_name not in done:
                self.prefetch_rows([file], self.file_fields(request, file))

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> bool:
        """Mark the job complete when allowed and every file was read; True when marked
        (its files are gone at Acoustic, so the state forgets them)."""
        missing = self._missing.pop(request.key, [])
        if not result.files:
            self.logger.warning(
                "Acoustic Exchange: job %s is READY_FOR_DOWNLOAD but names no "
                "segmentDataFiles; skipped.",
                job.job_id,
            )
            return False
        if missing:
            self.logger.warning(
                "Acoustic Exchange: job %s is not fully downloaded (missing %s); it is not "
                "marked complete.",
                job.job_id,
                ", ".join(missing),
            )
            return False
        if not self.api.may_mark_complete(result.detail or request.params["job"]):
            return False
        if not self.api.mark_complete(job.job_id):
            self.logger.warning(
                "Acoustic Exchange: PUT /v1/jobs/%s/status/complete answered false: job %s is "
                "not marked complete; trying again on the next run.",
                job.job_id,
                job.job_id,
            )
            return False
        self.logger.info(
            "Acoustic Exchange: job %s marked complete (PUT /v1/jobs/{jobId}/status/complete) "
            "after its %d file(s) were emitted.",
            job.job_id,
            len(result.files),
        )
        return True
