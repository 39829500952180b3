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

Every core: with two exports or more, an ``AsyncExportStream`` starts a ``ReadPool`` of
worker processes (``tap_segments.exports.workers``) before its engine starts. Exports that
finish while the main process reads another one's files are offered to the pool
(``prefetch_export``, which a vendor stream implements by calling ``prefetch_rows`` of the
stream that will read the files, with the arguments it will give ``rows_of_files``), and a
worker reads them meanwhile. When ``rows_of_files`` reaches such files, it hands on the
worker's records (or batch files) in order instead of reading them; a task no worker has
started yet is taken back and read here. Where workers cannot be used (rows that do not
take the chunk way, a record limit, no fork), everything is read here: the output is the
same either way.
"""

from __future__ import annotations

import copy
import time
import typing as t
import weakref

from tap_segments import batchfiles
from tap_segments.errors import (
    ExportFailedError,
    ExportFileGoneError,
    ExportTimeoutError,
    TapSegmentsError,
)
from tap_segments.exports.chunks import RecordLayout, RowsChunk, WrittenBatch
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
from tap_segments.exports.readers import iter_file_items
from tap_segments.exports.state import ExportJob, ExportState
from tap_segments.exports.workers import FileOpener, ReadPool, Ticket, read_chunk
from tap_segments.output import FastRecordsMixin
from tap_segments.rows import PLAIN_VALUE_TYPES, CsvChunk, PlainRow, collector_paused
from tap_segments.streams import VendorStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class _Reading:
    """A tap's read pool, and its export streams running now."""

    def __init__(self) -> None:
        self.pool: ReadPool | None = None
        self.drivers: list[AsyncExportStream] = []


_READING: weakref.WeakKeyDictionary[t.Any, _Reading] = weakref.WeakKeyDictionary()


def read_pool(tap: t.Any) -> ReadPool | None:
    reading = _READING.get(tap)
    return reading.pool if reading is not None else None


def offer_waiting_exports(tap: t.Any) -> None:
    """Offer the finished exports that wait their turn to the tap's read pool."""
    reading = _READING.get(tap)
    if reading is not None and reading.pool is not None:
        for driver in reading.drivers:
            driver.offer_waiting()


class AsyncExportStream(VendorStream):
    """A stream whose records come from asynchronous exports run by the shared engine."""

    _exports: ExportState | None = None
    _runner: ExportRunner | None = None
    #: Finished exports offered to the read pool (None: not running).
    _offered: list[ExportEvent] | None = None
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

    def prefetch_export(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        """A finished export waits its turn: have its files read in a worker process
        meanwhile, by calling ``prefetch_rows`` of the stream that will read them, with the
        arguments it will give ``rows_of_files``. Default: nothing (read in its turn)."""

    def row_readers(self) -> list[ExportRowsStream]:
        """The selected streams that read this stream's export files as rows."""
        streams = [self, *self.child_streams]
        return [s for s in streams if isinstance(s, ExportRowsStream) and s.selected]

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
        self._start_reading(len(requests))  # before the engine's threads: workers are forked
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
        try:
            if runner is not None:
                for event in runner.stop_and_collect_started():
                    self._started(event)
        finally:
            self._stop_reading()

    def _start_reading(self, exports: int) -> None:
        """With two exports or more, a pool of worker processes to read their files."""
        reading = _READING.setdefault(self.tap, _Reading())
        reading.drivers.append(self)
        self._offered = []
        if exports < 2 or reading.pool is not None:
            return
        readers = [reader for reader in self.row_readers() if reader.reads_in_workers()]
        if not readers:
            return
        openers = {
            r.api.vendor_name: FileOpener(r.api.http, r.common.s3_endpoint_url) for r in readers
        }
        wanted = min(exports, self.common.max_concurrent_exports) - 1
        reading.pool = ReadPool.start(wanted, openers, self.logger)

    def _stop_reading(self) -> None:
        reading = _READING.get(self.tap)
        if reading is None or self not in reading.drivers:
            return
        reading.drivers.remove(self)
        self._offered = None
        if reading.pool is not None and not reading.drivers:
            pool, reading.pool = reading.pool, None
            for reader in self.row_readers():
                reader.forget_prefetched(pool)
            pool.close()

    def offer_waiting(self) -> None:
        """Offer the finished exports that wait their turn to the read pool (once each)."""
        runner, offered = self._runner, self._offered
        if runner is None or offered is None:
            return
        for event in runner.finished_waiting():
            if any(event is seen for seen in offered):
                continue
            offered.append(event)
            job, result = t.cast(ExportJob, event.job), t.cast(PollResult, event.result)
            try:
                self.prefetch_export(event.request, job, result)
            except Exception as exc:  # only a head start: the export is still read in turn
                self.logger.debug("Export %s not read ahead: %s", event.request.key, exc)

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
                self.offer_waiting()  # the others that finished: read while this one is
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


def read_key(
    files: t.Sequence[ExportFile], parent_fields: t.Mapping[str, t.Any], json_items_path: str
) -> tuple | None:
    """What identifies a read of files as rows (None: cannot be told apart)."""
    key = (tuple(f.url for f in files), tuple(parent_fields.items()), json_items_path)
    try:
        hash(key)
    except TypeError:
        return None
    return key


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
        #: Reads handed to worker processes, by ``read_key``.
        self._prefetched: dict[tuple, Ticket] = {}
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

        While the record loop takes chunks (``takes_chunks``), the rows of a CSV file come
        as ``RowsChunk`` items instead, many at a time, whenever the SDK's record path would
        emit them unchanged (``accepts_layout``); a caller yields them on as they come.

        ``export`` is the (export key, job id) the files belong to, for the fields of
        structured logs (default: the export this stream is emitting).
        """
        key, job_id = export or getattr(self, "_export_in_hand", None) or (None, None)
        reserved = {*parent_fields, self.row_number_field}
        known = set(self.schema["properties"]) - reserved  # raw column names already in schema
        row_number = 0
        began = time.monotonic()
        log = self.row_fields(key, job_id, "READING")
        read = read_key(files, parent_fields, json_items_path)
        ticket = self._prefetched.pop(read, None) if read is not None else None
        first = 0  # the first file to read here
        if ticket is not None:
            row_number, first = yield from self._records_from_worker(
                ticket, files, reserved, known, log
            )
        for file in files[first:]:
            items = iter_file_items(
                lambda file=file: self.open_file(file),  # type: ignore[misc]
                file.name,
                file.format,
                json_items_path=json_items_path,
                logger=self.logger,
            )
            with collector_paused():  # see there: a file's rows make no reference cycles
                row_number = yield from self._records_of_items(
                    items, parent_fields, reserved, known, row_number
                )
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

    # -- reading in worker processes ------------------------------------------------------

    def reads_in_workers(self) -> bool:
        """Whether a worker process can read this stream's files: their rows take the chunk
        way (as far as can be told before reading them) and files open the usual way."""
        if type(self).open_file is not ExportRowsStream.open_file:
            return False
        if self.ABORT_AT_RECORD_COUNT is not None or not self.skips_nothing_per_record(None):
            return False
        config = self.get_batch_config(self.config)
        if config:
            return batchfiles.writes(config) and self.batch_chunks_welcome(config) is not None
        return self.fast_record_plan is not None

    def prefetch_rows(
        self,
        files: t.Sequence[ExportFile],
        parent_fields: t.Mapping[str, t.Any],
        *,
        json_items_path: str = "item",
    ) -> None:
        """Have a worker process read ``files`` now, for a ``rows_of_files`` call with the
        same arguments to come (nothing happens without a read pool)."""
        pool = read_pool(self.tap)
        key = read_key(files, parent_fields, json_items_path)
        if pool is None or key is None or key in self._prefetched or not self.reads_in_workers():
            return
        batch: dict[str, t.Any] = {}
        config = self.get_batch_config(self.config)
        if config:
            alias = self.batch_chunks_welcome(config)
            batch = {"batch": config, "tap_name": self.tap_name, "alias": alias}
        self._prefetched[key] = pool.submit(
            self.api.vendor_name,
            files,
            parents=tuple(parent_fields.items()),
            number_field=self.row_number_field,
            json_items_path=json_items_path,
            spool_rows=self.STATE_MSG_FREQUENCY,
            **batch,
        )

    def forget_prefetched(self, pool: ReadPool) -> None:
        """The pool is closing: whatever its workers read for this stream is not needed."""
        tickets, self._prefetched = self._prefetched, {}
        for ticket in tickets.values():
            pool.discard(ticket)

    def _records_from_worker(
        self,
        ticket: Ticket,
        files: t.Sequence[ExportFile],
        reserved: set[str],
        known: set[str],
        log: dict[str, t.Any],
    ) -> t.Generator[dict, None, tuple[int, int]]:
        """The records a worker read, in order: (rows, index of the first file left to
        read here). A task no worker started, or rows that may not come in chunks now, are
        read here instead."""
        pool = read_pool(self.tap)
        if pool is None or pool.steal(ticket):
            return 0, 0
        self.logger.info(
            "%s: %s read by a worker process meanwhile.",
            self.name,
            ", ".join(f.name for f in files),
        )
        number = 0
        for report in ticket.reports():
            kind = report[0]
            if kind == "header":  # a file's columns, before its rows
                _, index, header = report
                if not known.issuperset(header):
                    self._add_columns(dict.fromkeys(header, ""), reserved)
                    known.update(header)
                if not self.accepts_layout(ticket.task.layout(header)):
                    pool.discard(ticket)
                    return number, index
            elif kind == "chunk":
                number += report[2]
                yield t.cast(dict, read_chunk(report))  # typed as a record, as RowsChunk is
                offer_waiting_exports(self.tap)
            elif kind == "batch":
                number += report[2]
                yield t.cast(dict, WrittenBatch(report[1], report[2]))
                offer_waiting_exports(self.tap)
            elif kind == "file":
                name = files[report[1]].name
                rows = {**log, "rows": number}
                self.logger.info(
                    "%s: %d row(s) read so far, through %s.", self.name, number, name, extra=rows
                )
            elif kind == "log":
                self.logger.log(report[1], "%s", report[2])
            elif kind == "inline":  # a file that is not CSV: read here, from its start
                return report[2], report[1]
            elif kind == "error":
                raise report[1]
        return number, len(files)

    def row_fields(self, key: str | None, job_id: str | None, status: str, **more: t.Any) -> dict:
        return {
            "vendor": self.api.vendor_name,
            "stream_name": self.name,
            "export_key": key,
            "job_id": job_id,
            "status": status,
            **more,
        }

    def _records_of_items(
        self,
        items: t.Iterable[CsvChunk | dict],
        parent_fields: t.Mapping[str, t.Any],
        reserved: set[str],
        known: set[str],
        row_number: int,
    ) -> t.Generator[dict, None, int]:
        """The records of one file's rows (chunks when the record loop takes them), numbered
        after ``row_number``; returns the last number. Adds new columns to ``known``."""
        plain_parents = all(type(value) in PLAIN_VALUE_TYPES for value in parent_fields.values())
        number_field = self.row_number_field
        layout: RecordLayout | None = None
        chunked = False
        for item in items:
            if type(item) is CsvChunk:
                if layout is None:  # a CSV file's header is the same in every chunk
                    header = item.header
                    if not known.issuperset(header):
                        self._add_columns(dict.fromkeys(header, ""), reserved)
                        known.update(header)
                    columns = tuple(f"_{c}" if c in reserved else c for c in header)
                    layout = RecordLayout(columns, tuple(parent_fields.items()), number_field)
                    chunked = self.accepts_layout(layout)
                if chunked:
                    # Typed as a record: it travels where records do (``get_records``).
                    yield t.cast(dict, RowsChunk(layout, item.rows, row_number + 1))
                    row_number += len(item)
                    offer_waiting_exports(self.tap)  # exports that finished meanwhile
                    continue
                rows: t.Iterable[dict] = item.plain_rows()
            else:
                rows = (t.cast(dict, item),)
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
        return row_number

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
