"""The export engine on its own: polling, waits, resume, staleness, timeouts, concurrency."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest

from tap_segments.errors import ExportFailedError, ExportTimeoutError, MalformedResponseError
from tap_segments.exports.engine import (
    ExportJob,
    ExportRequest,
    ExportRunner,
    ExportSettings,
    ExportStatus,
    PollResult,
    map_status,
    poll_waits,
)

LOG = logging.getLogger("test")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


class FakeAPI:
    """An export API whose jobs complete after ``polls`` polls."""

    vendor_label = "Fake"

    def __init__(self, polls: int = 3, retention: dt.timedelta | None = None) -> None:
        self.polls = polls
        self.export_retention = retention
        self.triggered: list[str] = []
        self.polled: dict[str, int] = {}
        self.gone: set[str] = set()
        self.failed: set[str] = set()
        self.retry_after: float | None = None
        self.lock = threading.Lock()

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        with self.lock:
            self.triggered.append(request.key)
            job_id = f"job-{request.key}-{len(self.triggered)}"
        return ExportJob(request.key, job_id, NOW.isoformat())

    def poll_export(self, job: ExportJob) -> PollResult:
        if job.job_id in self.gone:
            return PollResult(ExportStatus.GONE)
        if job.key in self.failed:
            return PollResult(ExportStatus.FAILED, message="boom")
        with self.lock:
            count = self.polled[job.job_id] = self.polled.get(job.job_id, 0) + 1
        if count >= self.polls:
            return PollResult(ExportStatus.COMPLETED, detail={"job": job.job_id})
        return PollResult(
            ExportStatus.RUNNING, progress=count / self.polls, retry_after=self.retry_after
        )


def run(api: FakeAPI, requests: list[ExportRequest], settings: ExportSettings, **kw):
    runner = ExportRunner(api, settings, LOG, now=kw.pop("now", lambda: NOW))
    waits: list[float] = []
    runner._sleep = lambda seconds: waits.append(seconds)  # type: ignore[method-assign]
    for request in requests:
        runner.submit(request, kw.get("resume", {}).get(request.key))
    events = list(runner.events())
    return events, waits


FAST = ExportSettings(poll_interval=2, poll_max_interval=5, timeout=100, max_concurrent=1)


def test_poll_wait_grows_to_the_cap():
    waits = poll_waits(ExportSettings(poll_interval=2, poll_max_interval=10, growth=2))
    assert [next(waits) for _ in range(5)] == [2, 4, 8, 10, 10]


def test_polls_until_complete_with_growing_waits():
    api = FakeAPI(polls=4)
    events, waits = run(api, [ExportRequest("a")], FAST)
    assert [e.kind for e in events] == ["started", "finished"]
    assert api.polled == {"job-a-1": 4}
    assert waits == [2, 3, 4.5]  # 1.5x growth, capped at 5 only later


def test_retry_after_is_never_shortened():
    api = FakeAPI(polls=3)
    api.retry_after = 7
    _, waits = run(api, [ExportRequest("a")], FAST)
    assert waits == [7, 7]


def test_resumed_job_is_polled_not_triggered():
    api = FakeAPI(polls=1)
    saved = ExportJob("a", "job-old", (NOW - dt.timedelta(hours=1)).isoformat())
    events, _ = run(api, [ExportRequest("a")], FAST, resume={"a": saved})
    assert api.triggered == []
    assert events[0].resumed and events[-1].job.job_id == "job-old"


def test_job_older_than_retention_is_triggered_afresh():
    api = FakeAPI(polls=1, retention=dt.timedelta(hours=48))
    saved = ExportJob("a", "job-old", (NOW - dt.timedelta(hours=49)).isoformat())
    events, _ = run(api, [ExportRequest("a")], FAST, resume={"a": saved})
    assert api.triggered == ["a"]
    assert events[-1].job.job_id == "job-a-1"
    assert not events[0].resumed


def test_job_the_vendor_forgot_is_triggered_afresh():
    api = FakeAPI(polls=1)
    api.gone.add("job-old")
    saved = ExportJob("a", "job-old", NOW.isoformat())
    events, _ = run(api, [ExportRequest("a")], FAST, resume={"a": saved})
    assert api.triggered == ["a"]
    assert [e.kind for e in events] == ["started", "started", "finished"]


def test_timeout_names_the_job():
    api = FakeAPI(polls=10**6)
    clock = iter(NOW + dt.timedelta(seconds=s) for s in range(0, 10**6, 30))
    events, _ = run(api, [ExportRequest("seg-9")], FAST, now=lambda: next(clock))
    assert events[-1].kind == "failed"
    assert isinstance(events[-1].error, ExportTimeoutError)
    assert "seg-9" in str(events[-1].error) and "job-seg-9-1" in str(events[-1].error)


def test_failed_job_is_reported_by_id():
    api = FakeAPI()
    api.failed.add("x")
    events, _ = run(api, [ExportRequest("x")], FAST)
    assert isinstance(events[-1].error, ExportFailedError)
    assert "job-x-1" in str(events[-1].error) and "boom" in str(events[-1].error)


def test_exports_overlap_up_to_the_limit():
    """Eight 0.3 s exports with four workers take about two rounds, not eight."""

    class SlowAPI(FakeAPI):
        def poll_export(self, job):
            time.sleep(0.3)
            return PollResult(ExportStatus.COMPLETED)

    api = SlowAPI()
    settings = ExportSettings(poll_interval=0, max_concurrent=4)
    runner = ExportRunner(api, settings, LOG, now=lambda: NOW)
    for i in range(8):
        runner.submit(ExportRequest(str(i)))
    began = time.monotonic()
    kinds = [e.kind for e in runner.events()]
    elapsed = time.monotonic() - began
    assert kinds.count("finished") == 8
    assert elapsed < 8 * 0.3 * 0.6  # well under the serial sum


def test_unknown_status_is_an_error_naming_the_endpoint():
    with pytest.raises(MalformedResponseError, match=r"GET /jobs/1.*'WEIRD'"):
        map_status("WEIRD", where="GET /jobs/1", running=["A"], completed=["B"], failed=["C"])
    assert map_status("completed", where="x", running=[], completed=["COMPLETED"], failed=[]) is (
        ExportStatus.COMPLETED
    )
