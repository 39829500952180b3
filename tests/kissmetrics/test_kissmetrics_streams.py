"""Kissmetrics against requests-mock: status handling, paging, windows and their bookmark."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import requests_mock as rm
from singer_output import run_in_process

from tap_segments.errors import MalformedResponseError

API = "https://api.km.test"
QUERY = "https://query.km.test"
TODAY = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
START = TODAY - dt.timedelta(days=3)
CONFIG = {
    "kissmetrics_api_base_url": API,
    "kissmetrics_query_base_url": QUERY,
    "kissmetrics_api_token": "km-secret-token",
    "start_date": START.isoformat(),
    "export_poll_interval_seconds": 0.01,
    "export_poll_max_interval_seconds": 0.02,
    "max_concurrent_exports": 1,
}
REPORT = {
    "id": "r1",
    "name": "R",
    "links": [{"rel": "run", "href": f"{QUERY}/v2/products/p/reports/r1/run", "name": "Run"}],
}


class FakeKissmetrics:
    """Runs that take one 200-with-progress poll, then 201 + Location; 3 rows a window."""

    def __init__(self, mocker: rm.Mocker, rows: int = 3) -> None:
        self.rows = rows
        self.runs: list[str] = []
        self.mocker = mocker
        mocker.get(f"{API}/core/reports", json=[REPORT])
        mocker.post(f"{QUERY}/v2/products/p/reports/r1/run", json=self.run, status_code=202)
        mocker.get(re.compile(rf"{QUERY}/v2/queries/q\d+/status"), json=self.status)
        mocker.get(re.compile(rf"{QUERY}/v2/queries/q\d+/results"), json=self.results)
        self.polls: dict[str, int] = {}

    def run(self, request, context):
        self.runs.append(request.json()["start_date"])
        context.headers["Location"] = f"{QUERY}/v2/queries/q{len(self.runs)}/status"
        return {"meta": {"status": 202}, "data": {"message": "success"}}

    def status(self, request, context):
        query = request.path.split("/")[-2]
        polls = self.polls[query] = self.polls.get(query, 0) + 1
        if polls < 2:
            return {"data": {"completed": False, "progress": 0.5}}
        context.status_code = 201
        context.headers["Location"] = f"{QUERY}/v2/queries/{query}/results"
        return {"data": {"completed": True, "progress": 1.0}}

    def results(self, request, context):
        limit, offset = int(request.qs["limit"][0]), int(request.qs["offset"][0])
        rows = [[i, f"u{i}"] for i in range(offset, min(offset + limit, self.rows))]
        return {"data": rows, "pagination": {"limit": limit, "offset": offset, "total": self.rows}}


@pytest.fixture
def km():
    with rm.Mocker() as mocker:
        yield FakeKissmetrics(mocker)


def test_one_run_per_complete_day_with_iso_dates_like_the_doc(km):
    out = run_in_process(CONFIG)
    assert km.runs == [(START + dt.timedelta(days=d)).isoformat() for d in range(3)]
    body = km.mocker.request_history[1].json()
    assert body["end_date"].endswith("T23:59:59+00:00")  # one second before the next window
    assert out.count("kissmetrics_report_results") == 9
    first = out.records["kissmetrics_report_results"][0]
    assert first["values"] == [0, "u0"] and first["report_id"] == "r1" and first["row_number"] == 1
    windows = out.last_state["bookmarks"]["kissmetrics_report_results"]["report_windows"]
    assert windows["r1"]["done_through"] == TODAY.isoformat()


def test_bearer_token_on_both_hosts(km):
    run_in_process(CONFIG)
    hosts = {r.hostname for r in km.mocker.request_history}
    assert hosts == {"api.km.test", "query.km.test"}
    assert all(
        r.headers["Authorization"] == "Bearer km-secret-token" for r in km.mocker.request_history
    )


def test_pages_follow_limit_and_offset_until_total(km):
    km.rows = 120
    out = run_in_process({**CONFIG, "start_date": (TODAY - dt.timedelta(days=1)).isoformat()})
    offsets = [r.qs["offset"][0] for r in km.mocker.request_history if "results" in r.path]
    assert offsets == ["0", "50", "100"]
    assert [r["row_number"] for r in out.records["kissmetrics_report_results"]] == list(
        range(1, 121)
    )


def test_rerun_with_state_runs_no_window_twice(km):
    first = run_in_process(CONFIG)
    run_in_process(CONFIG, state=first.last_state)
    assert len(km.runs) == 3


def test_status_without_location_names_report_and_window(km):
    km.mocker.get(
        re.compile(rf"{QUERY}/v2/queries/q\d+/status"),
        json={"data": {"completed": True}},
        status_code=201,
    )
    with pytest.raises(MalformedResponseError, match=r"Kissmetrics: .*q1.*r1/"):
        run_in_process(CONFIG)


def test_page_count_disagreeing_with_total_names_report_and_window(km):
    def short(request, context):
        return {"data": [[1]], "pagination": {"limit": 50, "offset": 0, "total": 2}}

    km.mocker.get(re.compile(rf"{QUERY}/v2/queries/q\d+/results"), json=short)
    with pytest.raises(MalformedResponseError, match=r"report r1, window .*total=2"):
        run_in_process(CONFIG)


def test_bookmark_moves_only_over_unbroken_windows():
    from tap_segments.exports.engine import ExportJob, ExportRequest, ExportStatus, PollResult
    from tap_segments.tap import TapSegments

    tap = TapSegments(config=CONFIG)
    stream = tap.streams["kissmetrics_report_results"]
    done = PollResult(ExportStatus.COMPLETED)

    def finish(day: int) -> None:
        start = START + dt.timedelta(days=day)
        params = {"report_id": "r1", "start": start, "end": start + dt.timedelta(days=1)}
        stream.export_done(ExportRequest(f"r1/{day}", params), ExportJob("k", "j", "t"), done)

    finish(1)  # out of order: day 0 not done yet
    assert stream.report_windows["r1"] == {
        "done_through": START.isoformat(),
        "done_ahead": [(START + dt.timedelta(days=1)).isoformat()],
    }
    assert [s for s, _ in stream.windows("r1")] == [START, START + dt.timedelta(days=2)]
    finish(0)
    assert stream.report_windows["r1"] == {
        "done_through": (START + dt.timedelta(days=2)).isoformat(),
        "done_ahead": [],
    }
