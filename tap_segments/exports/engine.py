"""The vendor-neutral async-export engine: trigger, poll with a growing wait, hand back results.

Every vendor's asynchronous export (Artisan segment/profile exports, Indicative segment
exports, Kissmetrics report runs, Acoustic's READY_FOR_DOWNLOAD jobs) is driven by one
``ExportRunner``. A vendor client supplies only an ``ExportAPI``: how to start one export
(trigger it, or adopt a job the vendor already made) and how to read its status, mapped
to ``ExportStatus`` with a ``StatusMapping``. The runner

- resumes jobs recorded in state instead of triggering them again (unless they are older than
  the vendor's retention, or the vendor no longer knows them),
- polls each job with a wait that grows from ``poll_interval`` to ``poll_max_interval`` and is
  never shorter than a ``Retry-After`` the vendor sent,
- runs up to ``max_concurrent`` jobs at once in worker threads, so the total wall time follows
  the slowest job rather than the sum,
- gives up on a job after ``timeout`` seconds since it started, naming it,
- on a stop (an error in the caller, SIGTERM), lets a trigger already sent finish, so that
  its job id reaches the state and a restart polls it instead of triggering it again.

Workers never emit records or state: they report ``ExportEvent`` objects to the caller's
thread, which writes state and records (see ``tap_segments.exports.streams``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import logging
import queue
import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from tap_segments.errors import ExportFailedError, ExportTimeoutError, MalformedResponseError
from tap_segments.exports.download import ExportFile
from tap_segments.exports.state import ExportJob
from tap_segments.timeutil import now as utc_now

if t.TYPE_CHECKING:
    from tap_segments.settings import CommonSettings

#: How long a stop waits for a trigger request already sent to come back.
TRIGGER_GRACE_SECONDS = 30.0
#: How long a stop then waits for the other workers to notice it (so that they log nothing
#: after the run's last line).
STOP_WAIT_SECONDS = 2.0


class ExportStatus(str, enum.Enum):
    """Vendor job states, mapped from each vendor's own vocabulary."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    GONE = "GONE"  # the vendor no longer knows the job (404, expired): trigger it afresh


@dataclass(frozen=True)
class ExportRequest:
    """One export the stream wants: ``key`` is stable across runs (e.g. a segment id)."""

    key: str
    params: t.Mapping[str, t.Any] = field(default_factory=dict)


@dataclass
class PollResult:
    """What one status request said."""

    status: ExportStatus
    files: list[ExportFile] = field(default_factory=list)
    progress: float | None = None
    detail: dict[str, t.Any] = field(default_factory=dict)  # the vendor's job object
    message: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class StatusMapping:
    """A vendor's status words (any case), and what a finished job must carry."""

    running: frozenset[str]
    completed: frozenset[str]
    failed: frozenset[str]

    def status(self, value: t.Any, where: str) -> ExportStatus:
        """The ``ExportStatus`` of a status word; an unknown word is an error naming it."""
        word = str(value or "").strip().upper()
        for words, status in (
            (self.running, ExportStatus.RUNNING),
            (self.completed, ExportStatus.COMPLETED),
            (self.failed, ExportStatus.FAILED),
        ):
            if word in words:
                return status
        raise MalformedResponseError(f"{where} answered an unknown job status {value!r}.")

    def result(
        self,
        value: t.Any,
        where: str,
        files: t.Callable[[], list[ExportFile]],
        detail: dict[str, t.Any],
        file_field: str,
    ) -> PollResult:
        """The poll result of a job object.

        A job reported complete whose file is not there yet (Artisan's REST sample shows
        ``"status":"completed","result_url":null``) is still running: it is polled again
        until the file appears, bounded by ``export_timeout_seconds``.
        """
        status = self.status(value, where)
        if status is not ExportStatus.COMPLETED:
            return PollResult(status, detail=detail, message=str(value))
        found = files()
        if not found:
            return PollResult(
                ExportStatus.RUNNING, detail=detail, message=f"{value}, {file_field} not yet set"
            )
        return PollResult(status, files=found, detail=detail, message=str(value))


def status_words(*words: str) -> frozenset[str]:
    return frozenset(word.upper() for word in words)


class ExportAPI(t.Protocol):
    """The vendor side of an async export (a vendor client implements it)."""

    @property
    def vendor_label(self) -> str:
        """The vendor as messages name it ("Acoustic Exchange")."""

    @property
    def vendor_name(self) -> str:
        """The vendor's setting prefix ("acoustic"), for structured logs."""

    @property
    def export_retention(self) -> dt.timedelta | None:
        """How long the vendor keeps a job; older jobs in state are triggered afresh."""

    @property
    def triggers_jobs(self) -> bool:
        """False when the vendor makes the jobs itself: the tap adopts them (nothing is sent
        to start them, so nothing needs remembering in state)."""

    def trigger_export(self, request: ExportRequest) -> ExportJob: ...

    def poll_export(self, job: ExportJob) -> PollResult: ...


@dataclass(frozen=True)
class ExportSettings:
    poll_interval: float = 2.0
    poll_max_interval: float = 60.0
    timeout: float = 14400.0
    max_concurrent: int = 4
    growth: float = 1.5

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> ExportSettings:
        return cls(
            poll_interval=settings.export_poll_interval_seconds,
            poll_max_interval=settings.export_poll_max_interval_seconds,
            timeout=settings.export_timeout_seconds,
            max_concurrent=settings.max_concurrent_exports,
        )


@dataclass
class ExportEvent:
    """Reported by a worker to the caller's thread.

    ``kind`` is one of: ``started`` (job triggered or resumed; write it to state),
    ``finished`` (``result`` holds the files), ``failed`` (``error`` says why).
    """

    kind: str
    request: ExportRequest
    job: ExportJob | None = None
    result: PollResult | None = None
    error: BaseException | None = None
    resumed: bool = False


def export_fields(
    api: ExportAPI, stream: str | None, key: str, job_id: str | None, status: str, **more: t.Any
) -> dict[str, t.Any]:
    """The fields of a log line about one export, for structured logs (``extra=``)."""
    return {
        "vendor": api.vendor_name,
        "stream_name": stream,
        "export_key": key,
        "job_id": job_id,
        "status": status,
        **more,
    }


def poll_waits(settings: ExportSettings) -> t.Iterator[float]:
    """The growing wait between polls: interval, interval*growth, ... capped at the max."""
    wait = settings.poll_interval
    while True:
        yield min(wait, settings.poll_max_interval)
        wait = min(wait * settings.growth, settings.poll_max_interval)


class _Stopped(Exception):
    """Raised inside a worker when the run is being torn down."""


class ExportRunner:
    """Runs many exports concurrently and reports their events in the caller's thread."""

    def __init__(
        self,
        api: ExportAPI,
        settings: ExportSettings,
        logger: logging.Logger,
        *,
        now: t.Callable[[], dt.datetime] = utc_now,
        stream: str | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.logger = logger
        self.now = now
        self.stream = stream
        self._events: queue.Queue[ExportEvent] = queue.Queue()
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._outstanding = 0
        self._futures: list[Future[None]] = []
        self._triggering = 0  # trigger requests sent and not yet answered
        self._triggering_done = threading.Condition()

    # -- public -------------------------------------------------------------------------

    def submit(self, request: ExportRequest, resume: ExportJob | None = None) -> None:
        """Schedule an export: resume ``resume`` if given and still usable, else trigger."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.max_concurrent, thread_name_prefix="export"
            )
        self._outstanding += 1
        context = contextvars.copy_context()  # the stream's name, for request metrics
        self._futures.append(self._pool.submit(context.run, self._drive, request, resume))

    def events(self) -> t.Iterator[ExportEvent]:
        """Yield events until every submitted export has finished or failed.

        Closing the iterator early (an error in the caller, SIGTERM) stops the workers;
        jobs they had triggered stay in the caller's state, ready to be resumed.
        """
        try:
            while self._outstanding:
                event = self._events.get()
                if event.kind != "started":
                    self._outstanding -= 1
                yield event
        finally:
            self.close()

    def finished_waiting(self) -> list[ExportEvent]:
        """Finished exports reported and not yet handed to the caller (a snapshot)."""
        with self._events.mutex:
            return [event for event in self._events.queue if event.kind == "finished"]

    def close(self) -> None:
        self._stop.set()
        if self._pool is not None:
            # Every export done: the threads are idle, let them end now (a stream that forks
            # workers next needs to be the only thread); otherwise do not wait for them.
            self._pool.shutdown(wait=not self._outstanding, cancel_futures=True)
            self._pool = None

    def stop_and_collect_started(self, grace: float = TRIGGER_GRACE_SECONDS) -> list[ExportEvent]:
        """Stop the workers; wait (up to ``grace`` s) for trigger requests already sent to
        come back, and return every ``started`` event not yet handed to the caller."""
        self._stop.set()
        with self._triggering_done:
            self._triggering_done.wait_for(lambda: self._triggering == 0, timeout=grace)
        for future in self._futures:
            future.cancel()
        wait(self._futures, timeout=STOP_WAIT_SECONDS)
        started = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event.kind == "started":
                started.append(event)
        self.close()
        return started

    # -- worker -------------------------------------------------------------------------

    def _drive(self, request: ExportRequest, resume: ExportJob | None) -> None:
        job = None
        try:
            job = self._start(request, resume)
            result = self._poll_until_done(request, job)
            self._events.put(ExportEvent("finished", request, job=job, result=result))
        except _Stopped:
            return
        except BaseException as exc:  # reported to the caller's thread, which decides
            self._events.put(ExportEvent("failed", request, job=job, error=exc))

    def _start(self, request: ExportRequest, resume: ExportJob | None) -> ExportJob:
        retention = self.api.export_retention
        if resume is not None and retention is not None and resume.age(self.now()) > retention:
            self._log(
                request,
                resume,
                "EXPIRED",
                f"{self._name(request, resume)} is older than the vendor keeps exports "
                f"({retention}); triggering a new one.",
            )
            resume = None
        if resume is None:
            return self._trigger(request)
        self._log(
            request,
            resume,
            "RESUMED",
            f"{self._name(request, resume)} resumed from state (started {resume.started_at}).",
        )
        self._events.put(ExportEvent("started", request, job=resume, resumed=True))
        return resume

    def _trigger(self, request: ExportRequest) -> ExportJob:
        self._check_stopped()
        with self._triggering_done:
            self._triggering += 1
        try:
            job = self.api.trigger_export(request)
            # Reported even when the run is stopping: the vendor has started the job, so
            # its id must reach the state (a restart polls it instead of a second trigger).
            self._events.put(ExportEvent("started", request, job=job))
        finally:
            with self._triggering_done:
                self._triggering -= 1
                self._triggering_done.notify_all()
        self._check_stopped()
        if self.api.triggers_jobs:
            vendor = self.api.vendor_label
            text = f"{vendor} export {job.job_id} triggered for {request.key}."
            self._log(request, job, "TRIGGERED", text)
        return job

    def _poll_until_done(self, request: ExportRequest, job: ExportJob) -> PollResult:
        waits = poll_waits(self.settings)
        shown: tuple[t.Any, ...] | None = None  # the last status logged
        retriggered = False
        while True:
            self._check_stopped()
            self._check_timeout(request, job)
            result = self.api.poll_export(job)
            self._check_stopped()
            if result.status is ExportStatus.COMPLETED:
                self._completed(request, job, result)
                return result
            if result.status is ExportStatus.FAILED:
                detail = result.message if result.message and result.message != "FAILED" else ""
                raise ExportFailedError(
                    f"{self._name(request, job)} ended FAILED{': ' + detail if detail else ''}."
                )
            if result.status is ExportStatus.GONE:
                job = self._trigger_again(request, job, retriggered)
                retriggered, waits = True, poll_waits(self.settings)
                continue
            shown = self._progress(request, job, result, shown)
            self._sleep(max(next(waits), result.retry_after or 0.0))

    def _completed(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        seconds = job.age(self.now()).total_seconds()
        files = len(result.files)
        text = f"{self._name(request, job)} is complete ({files} file(s)) after {seconds:.0f} s."
        self._log(request, job, "COMPLETED", text, seconds=round(seconds, 3), files=files)

    def _trigger_again(self, request: ExportRequest, job: ExportJob, already: bool) -> ExportJob:
        """The vendor no longer knows the job: trigger it again, once."""
        name = self._name(request, job)
        if already:
            raise ExportFailedError(
                f"{name} is unknown to the vendor right after it was triggered."
            )
        vendor = self.api.vendor_label
        text = (
            f"{vendor} no longer knows export {job.job_id} for {request.key}; triggering a new one."
        )
        self._log(request, job, "GONE", text)
        return self._trigger(request)

    def _progress(
        self,
        request: ExportRequest,
        job: ExportJob,
        result: PollResult,
        shown: tuple[t.Any, ...] | None,
    ) -> tuple[t.Any, ...]:
        """Log the job's status when it changed since the last line; what is shown now."""
        status = (result.status, result.progress, result.message)
        if status != shown:
            word = result.message or result.status.value
            percent = "" if result.progress is None else f" ({result.progress:.0%})"
            text = f"{self._name(request, job)}: {word}{percent}"
            self._log(request, job, word, text, progress=result.progress)
        return status

    def _name(self, request: ExportRequest, job: ExportJob) -> str:
        return f"{self.api.vendor_label} export {job.job_id} for {request.key}"

    def _log(
        self, request: ExportRequest, job: ExportJob, status: str, text: str, **fields: t.Any
    ) -> None:
        """An INFO line about one export, with its fields for structured logs."""
        extra = export_fields(self.api, self.stream, request.key, job.job_id, status, **fields)
        self.logger.info("%s", text, extra=extra)

    def _check_timeout(self, request: ExportRequest, job: ExportJob) -> None:
        age = job.age(self.now()).total_seconds()
        if age > self.settings.timeout:
            raise ExportTimeoutError(
                f"{self._name(request, job)} did not finish within "
                f"export_timeout_seconds={self.settings.timeout:g} (running for {age:.0f} s)."
            )

    def _check_stopped(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped
