"""Acoustic Exchange streams: ``acoustic_jobs``, ``acoustic_scheduled_jobs`` and
``acoustic_segment_data``.

``acoustic_segment_data`` is file-driven: a READY_FOR_DOWNLOAD SEGMENT_EXPORT job already
names its CSV files, so there is nothing to trigger or poll. Each file is streamed through
the shared readers (gzip, each file's own header, resumed downloads). Files fully emitted
are remembered per job in state (``files_done``), written right after each file's last row,
so a rerun never emits them again. The tap is read-only unless ``acoustic_mark_complete``
is set; then, and only after every file of a job was emitted, it sends
``PUT /v1/jobs/{jobId}/status/complete``. It never calls the upload, fail or delete endpoints.
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus
from urllib.parse import quote

from singer_sdk import typing as th

from tap_segments.errors import ExportFileGoneError
from tap_segments.exports.engine import ExportFile
from tap_segments.exports.streams import ExportRowsStream
from tap_segments.vendors.acoustic.client import (
    FINAL_STATUSES,
    READY_FOR_DOWNLOAD,
    SEGMENT_EXPORT,
    AcousticStream,
    Job,
    data_file_names,
    epoch_millis,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: acoustic_jobs partition state: jobs emitted while not final, emitted again until they are.
OPEN_JOBS_KEY = "open_jobs"
#: acoustic_segment_data state: per jobId, the names of the files fully emitted.
FILES_DONE_KEY = "files_done"

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
        return [{"jobCategory": category} for category in self.job_categories]

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
        jobs = self.list_jobs(category, includeProducerSegmentIDString="true")
        for job in jobs:
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
        for category in self.job_categories:
            yield from self.scheduled_jobs(category)

    def scheduled_jobs(self, category: str) -> list[Job]:
        """The doc says the category "Must be SEGMENT_EXPORT"; for any other configured
        category a 400/404 means "no scheduled jobs there", not a failed run."""
        path = f"/v1/scheduledjobs/{quote(category, safe='')}"
        tolerated: tuple[int, ...] = ()
        if category != SEGMENT_EXPORT:
            tolerated = (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND)
        response = self.send(
            "GET", path, params=self.endpoint_filter(), expected_statuses=tolerated
        )
        if response.status_code in tolerated:
            self.logger.info(
                "%s: GET %s answered %d: no scheduled jobs in category %s.",
                self.vendor_label,
                path,
                response.status_code,
                category,
            )
            return []
        jobs = self.job_list(self.json_body(response), f"GET {path}")
        return [{"jobCategory": category, **job} for job in jobs]


class SegmentDataStream(AcousticStream, ExportRowsStream):
    """Rows of every file of READY_FOR_DOWNLOAD SEGMENT_EXPORT jobs, one record per row.

    ``row_number`` counts from 1 in each file (the key includes ``file_name``), so a file
    read again yields the same keys whatever happened to the job's other files.
    """

    name = "acoustic_segment_data"
    primary_keys = ("jobId", "file_name", "row_number")
    schema = th.PropertiesList(
        th.Property("jobId", th.IntegerType, required=True),
        th.Property("file_name", th.StringType, required=True),
        th.Property("row_number", th.IntegerType, required=True),
    ).to_dict()

    @property
    def files_done(self) -> dict[str, list[str]]:
        return t.cast(dict, self.stream_state.setdefault(FILES_DONE_KEY, {}))

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        jobs = self.ready_jobs()
        self.forget_jobs_not_ready({str(job["jobId"]) for job in jobs})
        for job in jobs:
            yield from self.job_rows(job)

    def ready_jobs(self) -> list[Job]:
        jobs = self.list_jobs(SEGMENT_EXPORT, status=READY_FOR_DOWNLOAD)
        # Filtered again here, in case the status filter is not applied.
        return [job for job in jobs if str(job.get("status")).upper() == READY_FOR_DOWNLOAD]

    def forget_jobs_not_ready(self, ready: set[str]) -> None:
        gone = [job_id for job_id in self.files_done if job_id not in ready]
        for job_id in gone:
            del self.files_done[job_id]
        if gone:
            self.logger.info(
                "%s: jobs %s are no longer READY_FOR_DOWNLOAD; forgetting their files in state.",
                self.vendor_label,
                ", ".join(gone),
            )
            self.flush_state()

    def file_names(self, job: Job) -> list[str]:
        """The job's files; when the list left them out, the one-job GET is asked."""
        names = data_file_names(job)
        if not names:
            detail = self.get_job(SEGMENT_EXPORT, str(job["jobId"]))
            names = data_file_names(detail or {})
        return names

    def job_rows(self, job: Job) -> t.Iterator[dict]:
        """Rows of every file of ``job`` not emitted before; then maybe mark it complete."""
        job_id = str(job["jobId"])
        names = self.file_names(job)
        if not names:
            self.logger.warning(
                "%s: job %s is READY_FOR_DOWNLOAD but names no segmentDataFiles; skipped.",
                self.vendor_label,
                job_id,
            )
            return
        missing = []
        for name in names:
            if name in self.files_done.get(job_id, []):
                continue
            try:
                yield from self.rows_of_files(
                    [self.segment_file(job, name)], {"jobId": job["jobId"], "file_name": name}
                )
            except ExportFileGoneError:
                self.logger.warning(
                    "%s: job %s file %s answered 404 (already deleted?); skipped, the job's "
                    "other files still load.",
                    self.vendor_label,
                    job_id,
                    name,
                )
                missing.append(name)
                continue
            self.files_done.setdefault(job_id, []).append(name)
            self.flush_state()
        if missing:
            self.logger.warning(
                "%s: job %s is not fully downloaded (missing %s); it is not marked complete.",
                self.vendor_label,
                job_id,
                ", ".join(missing),
            )
        elif self.config.get("acoustic_mark_complete"):
            self.mark_complete(job_id, len(names))

    def segment_file(self, job: Job, name: str) -> ExportFile:
        """``GET /v1/jobs/{jobId}/segmentDataFiles/{fileName}``, sent with the Bearer key."""
        job_id = str(job["jobId"])
        data_format = str(job.get("segmentDataFormat") or "text/csv")
        return ExportFile(
            url=f"/v1/jobs/{quote(job_id, safe='')}/segmentDataFiles/{quote(name, safe='')}",
            # Named so that a bad line is reported with its job, file and line.
            name=f"{self.vendor_label} job {job_id} file {name}",
            format="csv" if "csv" in data_format.lower() else None,
            authenticated=True,
        )

    def mark_complete(self, job_id: str, file_count: int) -> None:
        """``PUT /v1/jobs/{jobId}/status/complete``: the only call that changes vendor data.

        The doc says a 2xx answers "True" when marked, "False" when not.
        """
        path = f"/v1/jobs/{quote(job_id, safe='')}/status/complete"
        response = self.send("PUT", path)
        if response.text.strip().strip('"').lower() == "false":
            self.logger.warning(
                "%s: PUT %s answered false: job %s is not marked complete; trying again on "
                "the next run.",
                self.vendor_label,
                path,
                job_id,
            )
            return
        self.logger.info(
            "%s: job %s marked complete (PUT %s) after its %d file(s) were emitted.",
            self.vendor_label,
            job_id,
            path,
            file_count,
        )
        self.files_done.pop(job_id, None)
        self.flush_state()
