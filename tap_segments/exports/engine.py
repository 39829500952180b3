"""The vendor-neutral async-export engine: trigger, poll with a growing wait, hand back results.

Every vendor's asynchronous export (Artisan segment/profile exports, Indicative segment
exports, Kissmetrics report runs, ...) is driven by one ``ExportRunner``. A vendor supplies
only an ``ExportAPI``: how to trigger one export and how to read its status. The runner

- resumes jobs recorded in state instead of triggering them again (unless they are older than
  the vendor's retention, or the vendor no longer knows them),
- polls each job with a wait that grows from ``poll_interval`` to ``poll_max_interval`` and is
  never shorter than a ``Retry-After`` the vendor sent,
- runs up to ``max_concurrent`` jobs at once in worker threads, so the total wall time follows
  the slowest job rather than the sum,
- gives up on a job after ``timeout`` seconds since it started, naming it.

Workers never emit records or state: they report ``ExportEvent`` objects to the caller's
thread, which writes state and records (see ``tap_segments.exports.streams``).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import queue
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tap_segments.errors import ExportFailedError, ExportTimeoutError, MalformedResponseError


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
class ExportJob:
    """A triggered export as recorded in state; ``data`` is whatever the vendor needs to poll."""

    key: str
    job_id: str
    started_at: str
    data: dict[str, t.Any] = field(default_factory=dict)

    def to_state(self) -> dict[str, t.Any]:
        return {"job_id": self.job_id, "started_at": self.started_at, "data": self.data}

    @classmethod
    def from_state(cls, key: str, value: t.Mapping[str, t.Any]) -> ExportJob:
        return cls(
            key=key,
            job_id=str(value["job_id"]),
            started_at=str(value["started_at"]),
            data=dict(value.get("data") or {}),
        )

    def age(self, now: dt.datetime) -> dt.timedelta:
        return now - parse_timestamp(self.started_at)


@dataclass(frozen=True)
class ExportFile:
    """One result file of a finished export."""

    url: str
    name: str
    format: str | None = None  # "csv", "json", "jsonl"; None = detect from the bytes
    authenticated: bool = False  # send the vendor's credentials with the download


@dataclass
class PollResult:
    """What one status request said."""

    status: ExportStatus
    files: list[ExportFile] = field(default_factory=list)
    progress: float | None = None
    detail: dict[str, t.Any] = field(default_factory=dict)  # the vendor's job object
    message: str | None = None
    retry_after: float | None = None


class ExportAPI(t.Protocol):
    """The vendor side of an async export."""

    vendor_label: str
    export_retention: dt.timedelta | None

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
    def from_config(cls, config: t.Mapping[str, t.Any]) -> ExportSettings:
        return cls(
            poll_interval=float(config.get("export_poll_interval_seconds", 2)),
            poll_max_interval=float(config.get("export_poll_max_interval_seconds", 60)),
            timeout=float(config.get("export_timeout_seconds", 14400)),
            max_concurrent=max(1, int(config.get("max_concurrent_exports", 4))),
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


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def parse_timestamp(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def poll_waits(settings: ExportSettings) -> t.Iterator[float]:
    """The growing wait between polls: interval, interval*growth, ... capped at the max."""
    wait = settings.poll_interval
    while True:
        yield min(wait, settings.poll_max_interval)
        wait = min(wait * settings.growth, settings.poll_max_interval)


def map_status(
    value: t.Any,
    *,
    where: str,
    running: t.Collection[str],
    completed: t.Collection[str],
    failed: t.Collection[str],
) -> ExportStatus:
    """Map a vendor's status word (any case) to an ``ExportStatus``; unknown words are errors."""
    word = str(value or "").strip().upper()
    for words, status in (
        (running, ExportStatus.RUNNING),
        (completed, ExportStatus.COMPLETED),
        (failed, ExportStatus.FAILED),
    ):
        if word in words:
            return status
    raise MalformedResponseError(f"{where} answered an unknown job status {value!r}.")


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
    ) -> None:
        self.api = api
        self.settings = settings
        self.logger = logger
        self.now = now
        self._events: queue.Queue[ExportEvent] = queue.Queue()
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._outstanding = 0

    # -- public -------------------------------------------------------------------------

    def submit(self, request: ExportRequest, resume: ExportJob | None = None) -> None:
        """Schedule an export: resume ``resume`` if given and still usable, else trigger."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.max_concurrent, thread_name_prefix="export"
            )
        self._outstanding += 1
        self._pool.submit(self._drive, request, resume)

    def events(self) -> t.Iterator[ExportEvent]:
        """Yield events until every submitted export has finished or failed.

        Closing the iterator early (an error in the caller) stops the workers; jobs they
        had triggered stay in the caller's state, ready to be resumed by the next run.
        """
        try:
            while self._outstanding:
                event = self._events.get()
                if event.kind != "started":
                    self._outstanding -= 1
                yield event
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

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
        vendor = self.api.vendor_label
        retention = self.api.export_retention
        if resume is not None and retention is not None and resume.age(self.now()) > retention:
            self.logger.info(
                "%s export %s for %s is older than the vendor keeps exports (%s); "
                "triggering a new one.",
                vendor,
                resume.job_id,
                request.key,
                retention,
            )
            resume = None
        if resume is not None:
            self.logger.info(
                "%s export %s for %s resumed from state (started %s).",
                vendor,
                resume.job_id,
                request.key,
                resume.started_at,
            )
            self._events.put(ExportEvent("started", request, job=resume, resumed=True))
            return resume
        return self._trigger(request)

    def _trigger(self, request: ExportRequest) -> ExportJob:
        self._check_stopped()
        job = self.api.trigger_export(request)
        self._check_stopped()  # the run is ending: stay quiet, the caller no longer listens
        self.logger.info(
            "%s export %s triggered for %s.", self.api.vendor_label, job.job_id, request.key
        )
        self._events.put(ExportEvent("started", request, job=job))
        return job

    def _poll_until_done(self, request: ExportRequest, job: ExportJob) -> PollResult:
        waits = poll_waits(self.settings)
        last_progress: tuple[ExportStatus, float | None] | None = None
        retriggered = False
        while True:
            self._check_stopped()
            self._check_timeout(request, job)
            result = self.api.poll_export(job)
            self._check_stopped()
            if result.status is ExportStatus.COMPLETED:
                self.logger.info(
                    "%s export %s for %s is complete (%d file(s)) after %.0f s.",
                    self.api.vendor_label,
                    job.job_id,
                    request.key,
                    len(result.files),
                    job.age(self.now()).total_seconds(),
                )
                return result
            if result.status is ExportStatus.FAILED:
                detail = result.message if result.message and result.message != "FAILED" else ""
                raise ExportFailedError(
                    f"{self.api.vendor_label} export {job.job_id} for {request.key} ended "
                    f"FAILED{': ' + detail if detail else ''}."
                )
            if result.status is ExportStatus.GONE:
                if retriggered:
                    raise ExportFailedError(
                        f"{self.api.vendor_label} export {job.job_id} for {request.key} is "
                        "unknown to the vendor right after it was triggered."
                    )
                self.logger.info(
                    "%s no longer knows export %s for %s; triggering a new one.",
                    self.api.vendor_label,
                    job.job_id,
                    request.key,
                )
                job = self._trigger(request)
                retriggered = True
                waits = poll_waits(self.settings)
                continue
            progress = (result.status, result.progress)
            if progress != last_progress:
                self.logger.info(
                    "%s export %s for %s: %s%s",
                    self.api.vendor_label,
                    job.job_id,
                    request.key,
                    result.message or result.status.value,
                    "" if result.progress is None else f" ({result.progress:.0%})",
                )
                last_progress = progress
            self._sleep(max(next(waits), result.retry_after or 0.0))

    def _check_timeout(self, request: ExportRequest, job: ExportJob) -> None:
        age = job.age(self.now()).total_seconds()
        if age > self.settings.timeout:
            raise ExportTimeoutError(
                f"{self.api.vendor_label} export {job.job_id} for {request.key} did not finish "
                f"within export_timeout_seconds={self.settings.timeout:g} "
                f"(running for {age:.0f} s)."
            )

    def _check_stopped(self) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped
