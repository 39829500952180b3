"""Stream bases that put the export engine and the file readers to work inside the SDK.

``AsyncExportStream`` drives exports: it asks its vendor subclass which exports it wants
(``export_requests``), runs them through ``ExportRunner``, writes every triggered job to its
state at once (``exports_in_flight``: job id and start time, so a killed run resumes the job
instead of triggering it again), and turns each finished export into records
(``records_for_export``). Jobs leave the state only after their records were emitted.

``ExportRowsStream`` turns result files into records: one per row, keeping the file's own
column names, adding parent ids and a ``row_number`` that continues across the files of one
export. Columns are not known before the file is read, so new columns are added to the
schema, and a new SCHEMA message is sent, before the first record that carries them.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
import typing as t

from tap_segments.client import VendorStream
from tap_segments.errors import (
    ExportFailedError,
    ExportFileGoneError,
    ExportTimeoutError,
    TapSegmentsError,
)
from tap_segments.exports.engine import (
    ExportEvent,
    ExportFile,
    ExportJob,
    ExportRequest,
    ExportRunner,
    ExportSettings,
    PollResult,
)
from tap_segments.exports.readers import PLAIN_VALUE_TYPES, PlainRow, iter_file_rows
from tap_segments.output import FastRecordsMixin

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

IN_FLIGHT_KEY = "exports_in_flight"


class AsyncExportStream(VendorStream):
    """A stream whose records come from asynchronous exports run by the shared engine."""

    #: How long the vendor keeps a finished export; older jobs in state are triggered afresh.
    export_retention: dt.timedelta | None = None

    # -- what a vendor implements --------------------------------------------------------

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        raise NotImplementedError

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        raise NotImplementedError

    def poll_export(self, job: ExportJob) -> PollResult:
        raise NotImplementedError

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        raise NotImplementedError

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        """Called after every record of an export was emitted: move per-export bookmarks."""

    # -- state ---------------------------------------------------------------------------

    @property
    def exports_in_flight(self) -> dict[str, dict[str, t.Any]]:
        return t.cast(dict, self.stream_state.setdefault(IN_FLIGHT_KEY, {}))

    def _remember(self, job: ExportJob) -> None:
        self.exports_in_flight[job.key] = job.to_state()
        self.flush_state()

    def _forget(self, key: str) -> None:
        if self.exports_in_flight.pop(key, None) is not None:
            self.flush_state()

    # -- the sync --------------------------------------------------------------------------

    def new_job(self, key: str, job_id: str, **data: t.Any) -> ExportJob:
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        return ExportJob(key=key, job_id=job_id, started_at=started, data=data)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        runner = ExportRunner(self, ExportSettings.from_config(self.config), self.logger)
        requests = list(self.export_requests(context))
        self._drop_unrequested(requests)
        for request in requests:
            saved = self.exports_in_flight.get(request.key)
            runner.submit(request, ExportJob.from_state(request.key, saved) if saved else None)

        retriggered: set[str] = set()
        failures: list[str] = []
        for event in runner.events():
            if event.kind == "started":
                if not event.resumed:
                    self._remember(t.cast(ExportJob, event.job))
            elif event.kind == "failed":
                failures.append(self._handle_failure(event))
            else:
                try:
                    yield from self._finish(event)
                except ExportFileGoneError as exc:
                    if event.request.key in retriggered:
                        raise
                    retriggered.add(event.request.key)
                    self.logger.warning("%s Triggering the export again.", exc)
                    self._forget(event.request.key)
                    runner.submit(event.request, None)
        if failures:
            raise ExportFailedError(
                f"{len(failures)} export(s) of stream {self.name} failed: " + " ".join(failures)
            )

    def _finish(self, event: ExportEvent) -> t.Iterator[dict]:
        request, job, result = event.request, t.cast(ExportJob, event.job), event.result
        assert result is not None
        began = time.monotonic()
        emitted = 0
        for record in self.records_for_export(request, job, result):
            emitted += 1
            yield record
        self.logger.info(
            "%s export %s for %s: %d record(s) emitted in %.1f s; %.0f s since it was triggered.",
            self.vendor_label,
            job.job_id,
            request.key,
            emitted,
            time.monotonic() - began,
            job.age(dt.datetime.now(dt.timezone.utc)).total_seconds(),
        )
        self.export_done(request, job, result)
        self._forget(request.key)
        self.flush_state()

    def _handle_failure(self, event: ExportEvent) -> str:
        """Failed and timed-out jobs are dropped from state (the next run triggers afresh);
        any other error stops the run, leaving jobs in state to be resumed."""
        error = event.error
        if isinstance(error, (ExportFailedError, ExportTimeoutError)):
            self.logger.error("%s", error)
            self._forget(event.request.key)
            return str(error)
        if isinstance(error, BaseException):
            raise error
        raise TapSegmentsError(f"{self.vendor_label}: export for {event.request.key} failed.")

    def _drop_unrequested(self, requests: list[ExportRequest]) -> None:
        wanted = {request.key for request in requests}
        for key in list(self.exports_in_flight):
            if key not in wanted:
                self.logger.info(
                    "Export %s in state is no longer wanted (its source is gone or not "
                    "selected); forgetting it.",
                    key,
                )
                self._forget(key)


def column_schema(value: t.Any) -> dict[str, t.Any]:
    """JSON schema of a column first seen holding ``value`` (CSV cells are strings)."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, (int, float)):
        kind = "number"
    elif isinstance(value, dict):
        kind = "object"
    elif isinstance(value, list):
        kind = "array"
    else:
        kind = "string"
    return {"type": [kind, "null"]}


class ExportRowsStream(FastRecordsMixin, VendorStream):
    """Records that are the rows of export result files.

    Rows are written through the tap's fast record path (``tap_segments.output``) whenever
    the SDK's record processing would leave them unchanged.
    """

    #: The tap's own fields; a file column with one of these names is kept as ``_<name>``.
    row_number_field = "row_number"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # Columns are added to the schema as files reveal them: to this stream's own copy,
        # never to the class's (which a second tap in the same process would inherit).
        if isinstance(getattr(type(self), "schema", None), dict):
            self.schema = copy.deepcopy(self.schema)  # type: ignore[misc]  # a class-level dict

    def rows_of_files(
        self,
        files: t.Sequence[ExportFile],
        parent_fields: t.Mapping[str, t.Any],
        *,
        json_items_path: str = "item",
    ) -> t.Iterator[dict]:
        """One record per row of ``files``, in order, numbered from 1 across all files.

        CSV rows come as ``PlainRow`` (every value a ``str``, ``int``, ``bool`` or ``None``),
        which lets the fast record path skip checking each value; they stay ``PlainRow``
        only while the parent fields keep that promise. A caller that changes a row's values
        to anything else must yield ``dict(row)`` instead.
        """
        reserved = {*parent_fields, self.row_number_field}
        known = set(self.schema["properties"]) - reserved  # raw column names already in schema
        plain_parents = all(type(value) in PLAIN_VALUE_TYPES for value in parent_fields.values())
        number_field = self.row_number_field
        row_number = 0
        for file in files:

            def open_file(file: ExportFile = file) -> t.BinaryIO:
                return self.open_file(file.url, authenticated=file.authenticated, name=file.name)

            rows = iter_file_rows(
                open_file,
                file.name,
                file.format,
                json_items_path=json_items_path,
                logger=self.logger,
            )
            for row in rows:
                if not row.keys() <= known:
                    self._add_columns(row, reserved)
                    known |= row.keys()
                if not reserved.isdisjoint(row):
                    row = {(f"_{k}" if k in reserved else k): v for k, v in row.items()}
                elif not plain_parents and type(row) is PlainRow:
                    row = dict(row)
                row_number += 1
                row.update(parent_fields)
                row[number_field] = row_number
                yield row
            self.logger.info(
                "%s: %d row(s) read so far, through %s.", self.name, row_number, file.name
            )

    def _add_columns(self, row: t.Mapping[str, t.Any], reserved: set[str]) -> None:
        """Add ``row``'s unknown columns to the schema and announce it with a SCHEMA message."""
        schemas = [self.schema]
        if self._input_schema is not None and self._input_schema is not self.schema:
            schemas.append(self._input_schema)
        for name, value in row.items():
            column = f"_{name}" if name in reserved else name
            for schema in schemas:
                schema["properties"].setdefault(column, column_schema(value))
        mapper = self._tap.mapper
        if mapper is not None:
            mapper.register_raw_stream_schema(self.name, self.effective_schema, self.primary_keys)
            self._stream_maps = []
        self.reset_fast_record_plan()
        if self.selected:
            self._write_schema_message()
