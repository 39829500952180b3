"""Result files read in worker processes, so that finished exports use every core.

The main process writes every message (stdout is the Singer stream, and the only writer of
STATE is the main process), but reading a file (download, decompression, CSV parsing) and
encoding its rows is most of the work. While the main process reads one export's files,
a ``ReadPool`` of worker processes reads the files of the other finished exports:

- on the record path, a worker writes its rows' records as JSON lines (exactly the lines
  the main process would encode: same layout, same numbering) into spool files of a few
  MiB each, and the main process, when it reaches that export, hands them on as
  ``EncodedChunk`` items (framed as RECORD messages by the writer), in order;
- in BATCH mode, a worker writes the batch files themselves (``tap_segments.batchfiles``,
  rotated every ``batch_size`` records) and the main process writes their BATCH messages,
  in order, when it reaches that export.

A worker reports each file's header before its rows, so that the main process adds new
columns to the schema (and writes the SCHEMA message) first; it reports errors (a bad row,
a download that keeps breaking, a file gone) after the rows before them, and the main
process raises them at that point, as it would have reading the file itself. A file that
is not CSV is left for the main process to read. Nothing of a task is written to the
Singer stream until the main process reaches it, so the output is the same as reading the
files one after the other; the order of exports is the order they were handed over.

Workers are forked from the main process (only when it runs a single thread: nothing is
forked while another thread could hold a lock) before the export engine starts its
threads. Each worker opens files through the same ``open_result_file`` and vendor
``HttpClient`` (its own HTTP session), so the credential rules hold there too, and no
credential is passed to it in any form: it has the main process's memory. Where fork is
not available, there is no pool and files are read in the main process.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import typing as t
from dataclasses import dataclass, field

import requests

from tap_segments.batchfiles import BatchFiles
from tap_segments.exports.chunks import EncodedChunk, RecordLayout, RowsChunk
from tap_segments.exports.download import ExportFile, open_result_file
from tap_segments.exports.readers import iter_file_items
from tap_segments.rows import CsvChunk

if t.TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from tap_segments.http import HttpClient

#: Workers at most, whatever the number of cores.
MAX_WORKERS = 8
#: Bytes of records' lines a spool file holds at most (about 20,000 records of 8 fields).
SPOOL_BYTES = 4 << 20


@dataclass
class FileOpener:
    """How a worker opens the files of one vendor: its HTTP client (inherited, given a
    session of its own in the worker) and where ``s3://`` files are."""

    http: HttpClient
    s3_endpoint_url: str | None = None

    def open(self, file: ExportFile) -> t.BinaryIO:
        return open_result_file(self.http, file, s3_endpoint_url=self.s3_endpoint_url)

    def in_worker(self) -> None:
        """In a freshly forked worker: never reuse the main process's connections."""
        self.http.session = requests.Session()


@dataclass(frozen=True)
class ReadTask:
    """Read ``files`` (one numbering of rows across them) as the records of ``layout``."""

    id: int
    opener: str
    files: tuple[ExportFile, ...]
    parents: tuple[tuple[str, t.Any], ...]
    number_field: str
    json_items_path: str = "item"
    #: Records a spool file holds at most: the reading stream's STATE frequency, so that the
    #: main process rarely has to cut one where its periodic STATE falls.
    spool_rows: int = 10_000
    #: BATCH mode: the batch config, the tap's name and the stream alias files are for.
    batch: t.Any = None
    tap_name: str = ""
    alias: str = ""

    def layout(self, header: list[str]) -> RecordLayout:
        reserved = {name for name, _ in self.parents} | {self.number_field}
        columns = tuple(f"_{c}" if c in reserved else c for c in header)
        return RecordLayout(columns, self.parents, self.number_field)


@dataclass
class Ticket:
    """A task handed to the pool, and what its worker reported so far."""

    task: ReadTask
    messages: queue.Queue[tuple] = field(default_factory=queue.Queue)
    started: bool = False
    discarded: bool = False

    def reports(self) -> t.Iterator[tuple]:
        """The worker's reports, in order, until the task's end (blocks for each)."""
        while True:
            report = self.messages.get()
            if report[0] == "end":
                return
            yield report


class ReadPool:
    """Worker processes reading export files (see the module docstring)."""

    def __init__(self, workers: int, openers: dict[str, FileOpener], logger: logging.Logger):
        self.logger = logger
        self.spool = tempfile.mkdtemp(prefix="tap-segments-spool-")
        self._pending: list[Ticket] = []
        self._lock = threading.Condition()
        self._closed = False
        self._ids = itertools.count(1)
        context = multiprocessing.get_context("fork")
        self._workers: list[tuple[t.Any, Connection]] = []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            # The worker closes every end of the main process's (a fork copies them all): a
            # pipe whose other end only the main process holds ends when the main process does.
            mains = [conn for _, conn in self._workers] + [ours]
            process = context.Process(
                target=_worker_main,
                args=(theirs, openers, self.spool, mains),
                name="tap-segments-reader",
                daemon=True,
            )
            process.start()
            theirs.close()
            self._workers.append((process, ours))
        self._threads = [
            threading.Thread(target=self._serve, args=(conn,), name="reader-link", daemon=True)
            for _, conn in self._workers
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    def start(
        cls, wanted: int, openers: dict[str, FileOpener], logger: logging.Logger
    ) -> ReadPool | None:
        """A pool of up to ``wanted`` workers (one fewer than the cores: the main process
        reads too), or None when workers cannot be forked safely here."""
        workers = min(wanted, (os.cpu_count() or 1) - 1, MAX_WORKERS)
        if workers < 1 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        if threading.active_count() > 1:  # a thread could hold a lock the fork would copy
            logger.debug("Export files are read in this process: other threads are running.")
            return None
        logger.info("Reading export files in %d worker process(es) too.", workers)
        return cls(workers, openers, logger)

    # -- the main process's side ---------------------------------------------------------

    def submit(self, opener: str, files: t.Sequence[ExportFile], **task: t.Any) -> Ticket:
        ticket = Ticket(ReadTask(next(self._ids), opener, tuple(files), **task))
        with self._lock:
            self._pending.append(ticket)
            self._lock.notify()
        return ticket

    def steal(self, ticket: Ticket) -> bool:
        """Take back a task no worker has started (the main process reads it itself)."""
        with self._lock:
            if ticket in self._pending:
                self._pending.remove(ticket)
                return True
        return False

    def discard(self, ticket: Ticket) -> None:
        """The main process will not use the task's output: delete it as it comes."""
        if self.steal(ticket):
            ticket.messages.put(("end", ticket.task.id))
            return
        ticket.discarded = True
        while True:
            try:
                report = ticket.messages.get_nowait()
            except queue.Empty:
                break
            _delete_output(report, ticket.task)

    def close(self) -> None:
        """Stop the workers (a task in progress is abandoned) and delete the spool."""
        with self._lock:
            self._closed = True
            abandoned, self._pending = self._pending, []
            self._lock.notify_all()
        for ticket in abandoned:
            ticket.messages.put(("end", ticket.task.id))
        for _, conn in self._workers:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for process, _ in self._workers:
            process.join(timeout=0.5)  # an idle worker ends at once; a busy one is stopped
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for _, conn in self._workers:
            conn.close()
        shutil.rmtree(self.spool, ignore_errors=True)

    def _serve(self, conn: Connection) -> None:
        """One worker's link: hand it the next task, route its reports to the ticket."""
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                ticket = self._pending.pop(0)
                ticket.started = True
            try:
                conn.send(ticket.task)
                while True:
                    report = conn.recv()
                    if ticket.discarded:
                        _delete_output(report, ticket.task)
                    if report[0] == "end" or not ticket.discarded:
                        ticket.messages.put(report)
                    if report[0] == "end":
                        break
            except (EOFError, OSError) as exc:  # the worker died (or the pool is closing)
                if not self._closed:
                    error = RuntimeError(f"a worker reading export files stopped: {exc!r}")
                    ticket.messages.put(("error", error))
                ticket.messages.put(("end", ticket.task.id))
                return


def _delete_output(report: tuple, task: ReadTask) -> None:
    """Delete what a report of an unused task points to (spool file, batch file)."""
    with contextlib.suppress(OSError):
        if report[0] == "chunk":
            os.unlink(report[1])
        elif report[0] == "batch":
            import fsspec  # only with batch_config (see tap_segments.deferred)

            opened = fsspec.open(report[1], "wb", **dict(task.batch.storage.params or {}))
            opened.fs.rm(opened.path)


# -- the worker's side ------------------------------------------------------------------------


class _ForwardedLog(logging.Handler):
    """Sends a worker's log records (the readers' warnings) to the main process."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(logging.INFO)
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("log", record.levelno, record.getMessage()))


def _worker_main(
    conn: Connection, openers: dict[str, FileOpener], spool: str, mains: list[Connection]
) -> None:
    """A worker: read tasks until told to stop, or until the main process is gone."""
    for end in mains:
        end.close()
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the Singer stream is the main process's
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops the workers
    signal.signal(signal.SIGTERM, _exit_on_term)  # a file being written is deleted first
    _stop_with_parent()
    import gc

    gc.disable()  # rows make no reference cycles (see tap_segments.rows.collector_paused)
    for opener in openers.values():
        opener.in_worker()
    logger = logging.getLogger("tap-segments.reader")
    logger.propagate = False
    logger.addHandler(_ForwardedLog(conn))
    stopped = False  # told to stop by the main process (which deletes the spool itself)
    try:
        while (task := conn.recv()) is not None:
            try:
                _read(conn, task, openers[task.opener], spool, logger)
            except (BrokenPipeError, EOFError):
                raise
            except Exception as exc:  # reported; the main process raises it in its place
                conn.send(("error", _picklable(exc)))
            conn.send(("end", task.id))
        stopped = True
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the main process is gone (killed): nothing is left to report to
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ending already: let nothing cut it
        if not stopped:  # the main process was killed, or is stopping: delete the spool
            shutil.rmtree(spool, ignore_errors=True)


def _stop_with_parent() -> None:
    """Linux: SIGTERM this worker when the main process dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
            if os.getppid() == 1:  # died before that took effect
                raise SystemExit(0)


def _exit_on_term(signum: int, frame: t.Any) -> None:
    raise SystemExit(128 + signum)


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class _Spool:
    """Records' lines of one task, written to spool files of ``task.spool_rows`` records (or
    ``SPOOL_BYTES``) each."""

    def __init__(self, conn: Connection, folder: str, task: ReadTask) -> None:
        self.conn = conn
        self.rows = task.spool_rows
        self.prefix = os.path.join(folder, f"{task.id}-")
        self.parts: list[bytes] = []
        self.size = self.count = self.files = 0

    def add(self, chunk: RowsChunk) -> None:
        rest: RowsChunk | None = chunk
        while rest is not None and len(rest):
            room = self.rows - self.count
            part, rest = rest.split(room) if room < len(rest) else (rest, None)
            body = part.body()
            self.parts.append(body)
            self.size += len(body)
            self.count += len(part)
            if self.count >= self.rows or self.size >= SPOOL_BYTES:
                self.flush()

    def flush(self) -> None:
        """Write and report what is held (before any other report, so order is kept)."""
        if not self.parts:
            return
        self.files += 1
        path = f"{self.prefix}{self.files}.jsonl"
        with open(path, "wb") as out:
            out.writelines(self.parts)
        self.conn.send(("chunk", path, self.count))
        self.parts, self.size, self.count = [], 0, 0


def _read(
    conn: Connection, task: ReadTask, opener: FileOpener, folder: str, logger: logging.Logger
) -> None:
    number = 0
    files = BatchFiles(task.tap_name, task.alias, task.batch) if task.batch is not None else None
    spool = _Spool(conn, folder, task)
    try:
        for index, file in enumerate(task.files):
            items = iter_file_items(
                lambda file=file: opener.open(file),  # type: ignore[misc]
                file.name,
                file.format,
                json_items_path=task.json_items_path,
                logger=logger,
            )
            layout: RecordLayout | None = None
            for item in items:
                if type(item) is not CsvChunk:  # not CSV: for the main process to read
                    spool.flush()
                    conn.send(("inline", index, number))
                    return
                if layout is None:
                    spool.flush()
                    conn.send(("header", index, item.header))
                    layout = task.layout(item.header)
                chunk = RowsChunk(layout, item.rows, number + 1)
                number += len(chunk)
                if files is None:
                    spool.add(chunk)
                else:
                    for url, count in files.add_all(chunk):
                        conn.send(("batch", url, count))
            spool.flush()
            conn.send(("file", index, number))
        if files is not None:
            done = files.finish()
            if done is not None:
                conn.send(("batch", *done))
    except BaseException:
        spool.flush()  # the rows before the error, then the error
        if files is not None:
            files.discard()
        raise


def read_chunk(report: tuple) -> EncodedChunk:
    """The records of a ``chunk`` report, taken out of the spool."""
    _, path, count = report
    with open(path, "rb") as spooled:
        data = spooled.read()
    os.unlink(path)
    return EncodedChunk(data, count)
