"""Stream bases that put the export engine and the file readers to work inside the SDK.

``AsyncExportStream`` drives exports: it asks its vendor subclass which exports it wants
(``export_requests``), runs them through ``ExportRunner`` against the vendor client's
``ExportAPI`` (``export_api``), keeps every triggered job in its ``ExportState`` at once
(so a killed run resumes the job instead of triggering it again), and turns each finished
export into records (``records_for_export``). Jobs leave the state only after their records
were emitted. On SIGTERM, a trigger already sent is waited for and recorded before the run
stops, so its job is resumed, not triggered twice.

``ExportRowsStream`` turns result files into records: one per row, keeping the file's own
column names, adding parent ids and a ``row_number``. Columns are not known before the file
is read, so new columns are added to the schema, and a new SCHEMA message is sent, before
the first record that carries them.
"""

from __future__ import annotations

import copy
import time
import typing as t

from tap_segments.errors import (
    ExportFailedError,
    ExportFileGoneError,
    ExportTimeoutError,
    TapSegmentsError,
)
from tap_segments.exports.download import ExportFile, open_result_file
from tap_segments.exports.engine import (
    ExportAPI,
    ExportEvent,
    ExportRequest,
    ExportRunner,
    ExportSettings,
    PollResult,
    export_fields,
)
from tap_segments.exports.readers import iter_file_rows
from tap_segments.exports.state import ExportJob, ExportState
from tap_segments.output import FastRecordsMixin
from tap_segments.rows import PLAIN_VALUE_TYPES, PlainRow
from tap_segments.streams import VendorStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class AsyncExportStream(VendorStream):
    """A stream whose records come from asynchronous exports run by the shared engine."""

    _exports: ExportState | None = None
    _runner: ExportRunner | None = None
    #: (export key, job id) of the export whose records are being emitted, for log fields.
    _export_in_hand: tuple[str, str] | None = None

    # -- what a vendor stream implements ---------------------------------------------------

    @property
    def export_api(self) -> ExportAPI:
        raise NotImplementedError

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        raise NotImplementedError

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        raise NotImplementedError

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> bool:
        """Called after every record of an export was emitted: move per-export bookmarks.

        Returns True when the vendor will not offer the export again (its files done are
        then forgotten); an export a vendor keeps offering (Acoustic) returns False.
        """
        return True

    # -- state -----------------------------------------------------------------------------

    @property
    def exports(self) -> ExportState:
        """This stream's jobs in flight and files done (loaded and checked on first use)."""
        if self._exports is None:
            self._exports = ExportState(
                self.stream_state,
                save=self.flush_state,
                where=f"state of stream {self.name}",
                logger=self.logger,
            )
        return self._exports

    # -- the sync --------------------------------------------------------------------------

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        settings = ExportSettings.from_settings(self.common)
        runner = ExportRunner(self.export_api, settings, self.logger, stream=self.name)
        requests = list(self.export_requests(context))
        self._drop_unrequested(requests)
        for request in requests:
            runner.submit(request, self.exports.job(request.key))
        self._runner = runner
        try:
            yield from self._run(runner)
        finally:
            self.stop_exports()

    def stop_exports(self) -> None:
        """Stop the exports of this stream, if running; record the jobs that triggers
        already sent have started (an error, SIGTERM, the target gone), so that a restart
        polls them instead of triggering them again."""
        runner, self._runner = self._runner, None
        if runner is not None:
            for event in runner.stop_and_collect_started():
                self._started(event)

    def _started(self, event: ExportEvent) -> None:
        """A job was triggered: into the state at once (a resumed job is there already; an
        adopted one is found again by the next run)."""
        if not event.resumed and self.export_api.triggers_jobs:
            self.exports.remember(t.cast(ExportJob, event.job))

    def _run(self, runner: ExportRunner) -> t.Iterator[dict]:
        retriggered: set[str] = set()
        failures: list[str] = []
        for event in runner.events():
            if event.kind == "started":
                self._started(event)
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
                    self.exports.forget(event.request.key)
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
        self._export_in_hand = (request.key, job.job_id)
        for record in self.records_for_export(request, job, result):
            emitted += 1
            yield record
        self._export_in_hand = None
        self._log_emitted(request, job, result, emitted, time.monotonic() - began)
        if self.export_done(request, job, result):
            self.exports.forget(request.key)
        else:
            self.exports.forget_job(request.key)
        self.flush_state()

    def _log_emitted(
        self,
        request: ExportRequest,
        job: ExportJob,
        result: PollResult,
        emitted: int,
        seconds: float,
    ) -> None:
        api = self.export_api
        if api.triggers_jobs:
            text = (
                f"{api.vendor_label} export {job.job_id} for {request.key}: {emitted} record(s) "
                f"emitted in {seconds:.1f} s; {job.age().total_seconds():.0f} s since it was "
                "triggered."
            )
        else:
            text = (
                f"{api.vendor_label} job {job.job_id}: {emitted} record(s) of "
                f"{len(result.files)} file(s) emitted in {seconds:.1f} s."
            )
        fields = export_fields(
            api, self.name, request.key, job.job_id, "EMITTED", rows=emitted, seconds=seconds
        )
        self.logger.info("%s", text, extra=fields)

    def _handle_failure(self, event: ExportEvent) -> str:
        """Failed and timed-out jobs are dropped from state (the next run triggers afresh);
        any other error stops the run, leaving jobs in state to be resumed."""
        error = event.error
        if isinstance(error, (ExportFailedError, ExportTimeoutError)):
            self.logger.error("%s", error)
            self.exports.forget(event.request.key)
            return str(error)
        if isinstance(error, BaseException):
            raise error
        raise TapSegmentsError(
            f"{self.export_api.vendor_label}: export for {event.request.key} failed."
        )

    def _drop_unrequested(self, requests: list[ExportRequest]) -> None:
        wanted = {request.key for request in requests}
        for key in {*self.exports.keys(), *self.exports.keys_with_files()} - wanted:
            self.logger.info(
                "Export %s in the state of %s is no longer wanted (its source is gone or not "
                "selected); forgetting it.",
                key,
                self.name,
            )
            self.exports.forget(key)


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

    def open_file(self, file: ExportFile) -> t.BinaryIO:
        return open_result_file(self.api.http, file, s3_endpoint_url=self.common.s3_endpoint_url)

    def rows_of_files(
        self,
        files: t.Sequence[ExportFile],
        parent_fields: t.Mapping[str, t.Any],
        *,
        json_items_path: str = "item",
        export_label: str | None = None,
        export: tuple[str, str] | None = None,
    ) -> t.Generator[dict, None, int]:
        """One record per row of ``files``, in order, numbered from 1 across all files.

        With ``export_label`` (a stream that reads the files of an export some other stream
        drives), a last log line says how many rows of that export were emitted, and in how
        long; an ``AsyncExportStream`` says so for its own exports. Returns the number of
        rows (``count = yield from self.rows_of_files(...)``).

        CSV rows come as ``PlainRow`` (every value a ``str``, ``int``, ``bool`` or ``None``),
        which lets the fast record path skip checking each value; they stay ``PlainRow``
        only while the parent fields keep that promise. A caller that changes a row's values
        to anything else must yield ``dict(row)`` instead.

        ``export`` is the (export key, job id) the files belong to, for the fields of
        structured logs (default: the export this stream is emitting).
        """
        key, job_id = export or getattr(self, "_export_in_hand", None) or (None, None)
        reserved = {*parent_fields, self.row_number_field}
        known = set(self.schema["properties"]) - reserved  # raw column names already in schema
        plain_parents = all(type(value) in PLAIN_VALUE_TYPES for value in parent_fields.values())
        number_field = self.row_number_field
        row_number = 0
        began = time.monotonic()
        for file in files:
            rows = iter_file_rows(
                lambda file=file: self.open_file(file),  # type: ignore[misc]
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
                "%s: %d row(s) read so far, through %s.",
                self.name,
                row_number,
                file.name,
                extra=self.row_fields(key, job_id, "READING", rows=row_number),
            )
        if export_label is not None:
            seconds = time.monotonic() - began
            self.logger.info(
                "%s: %d row(s) of %s emitted in %.1f s.",
                self.name,
                row_number,
                export_label,
                seconds,
                extra=self.row_fields(key, job_id, "EMITTED", rows=row_number, seconds=seconds),
            )
        return row_number

    def row_fields(self, key: str | None, job_id: str | None, status: str, **more: t.Any) -> dict:
        return {
            "vendor": self.api.vendor_name,
            "stream_name": self.name,
            "export_key": key,
            "job_id": job_id,
            "status": status,
            **more,
        }

    def _add_columns(self, row: t.Mapping[str, t.Any], reserved: set[str]) -> None:
        """Add ``row``'s unknown columns to the schema and announce it with a SCHEMA message."""
        schemas = self.schemas_to_extend()
        for name, value in row.items():
            column = f"_{name}" if name in reserved else name
            for schema in schemas:
                schema["properties"].setdefault(column, column_schema(value))
        mapper = self.tap.mapper
        if mapper is not None:
            mapper.register_raw_stream_schema(self.name, self.effective_schema, self.primary_keys)
            self.reset_stream_maps()
        self.reset_fast_record_plan()
        if self.selected:
            self.write_schema_now()
