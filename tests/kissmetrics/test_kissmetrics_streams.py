"""Kissmetrics against requests-mock: status handling, paging, windows and their bookmarks."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import typing as t
from contextlib import redirect_stdout

import pytest
import requests_mock as rm
from singer_output import SyncOutput, parse_lines, run_in_process

from tap_segments.errors import MalformedResponseError, TapSegmentsError
from tap_segments.tap import TapSegments
from tap_segments.timeutil import iso
from tap_segments.vendors.kissmetrics.windows import advance_bookmark, plan_windows

API = "https://api.km.test"
QUERY = "https://query.km.test"
RUN_URL = f"{QUERY}/v2/products/p/reports/r1/run"
STATUS = re.compile(rf"{QUERY}/v2/queries/(q\d+)/status")
RESULTS = re.compile(rf"{QUERY}/v2/queries/(q\d+)/results")
DAY = dt.timedelta(days=1)
TODAY = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
START = TODAY - 3 * DAY
CONFIG = {
    "kissmetrics_api_base_url": API,
    "kissmetrics_query_base_url": QUERY,
    "kissmetrics_api_token": "km-secret-token",
    "start_date": START.isoformat(),
    "export_poll_interval_seconds": 0.01,
    "export_poll_max_interval_seconds": 0.02,
    "max_concurrent_exports": 1,
}
STREAM = "kissmetrics_report_results"


def report(report_id: str = "r1", run_href: str = RUN_URL) -> dict[str, t.Any]:
    return {
        "id": report_id,
        "name": f"Report {report_id}",
        "links": [
            {"rel": "self", "href": f"{API}/core/reports/{report_id}", "name": "Self"},
            {"rel": "run", "href": run_href, "name": "Run Report", "templated": False},
        ],
    }


class FakeKissmetrics:
    """Runs answer 202 + Location; status answers 202, 200 with progress, then 201 + Location;
    results page by limit/offset. ``rows`` rows a window; query ``q<n>`` is the n-th run."""

    def __init__(self, mocker: rm.Mocker, rows: int = 3) -> None:
        self.mocker = mocker
        self.rows = rows
        self.reports = [report()]
        self.runs: list[str] = []  # start_date of every run, in order
        self.polls: dict[str, int] = {}
        self.polls_needed: dict[str, int] = {}
        self.next_link: t.Callable[[int, int], str] | None = None  # (offset, limit) -> href
        mocker.get(f"{API}/core/reports", json=lambda request, context: self.reports)
        mocker.post(re.compile(rf"{QUERY}/v2/products/p/reports/r\d/run"), json=self.run)
        mocker.get(STATUS, json=self.status)
        mocker.get(RESULTS, json=self.results)

    def run(self, request: t.Any, context: t.Any) -> dict:
        self.runs.append(request.json()["start_date"])
        context.status_code = 202
        context.headers["Location"] = f"{QUERY}/v2/queries/q{len(self.runs)}/status"
        return {"meta": {"status": 202}, "data": {"message": "success"}}

    def status(self, request: t.Any, context: t.Any) -> dict:
        query = STATUS.match(request.url).group(1)
        polls = self.polls[query] = self.polls.get(query, 0) + 1
        needed = self.polls_needed.get(query, 2)
        if polls < needed:
            context.status_code = 202 if polls == 1 else 200
            return {"data": {"completed": False, "progress": round((polls - 1) / (needed - 1), 2)}}
        context.status_code = 201
        context.headers["Location"] = f"{QUERY}/v2/queries/{query}/results"
        return {"data": {"completed": True, "progress": 1.0}}

    def results(self, request: t.Any, context: t.Any) -> dict:
        limit, offset = int(request.qs["limit"][0]), int(request.qs["offset"][0])
        rows = [[i, f"u{i}"] for i in range(offset, min(offset + limit, self.rows))]
        links = [{"rel": "self", "href": request.url}]
        if self.next_link and offset + len(rows) < self.rows:
            links.append({"rel": "next", "href": self.next_link(offset + len(rows), limit)})
        pagination = {"limit": limit, "offset": offset, "total": self.rows}
        return {"data": rows, "pagination": pagination, "links": links}

    def requests_to(self, pattern: re.Pattern[str]) -> list[t.Any]:
        return [r for r in self.mocker.request_history if pattern.match(r.url)]


@pytest.fixture
def km():
    with rm.Mocker() as mocker:
        yield FakeKissmetrics(mocker)


def sync(config: dict, state: dict | None = None) -> tuple[SyncOutput, Exception | None]:
    """A sync in process; its output is kept when it fails (what a target would have read)."""
    buffer = io.StringIO()
    error = None
    with redirect_stdout(buffer):
        try:
            TapSegments(config=config, state=state, validate_config=True).sync_all()
        except Exception as exc:
            error = exc
    return SyncOutput(parse_lines(buffer.getvalue())), error


def bookmarks(state: dict | None) -> dict[str, t.Any]:
    return (state or {})["bookmarks"][STREAM]


def days(*offsets: int) -> list[str]:
    return [iso(START + n * DAY) for n in offsets]


# -- runs, auth and links -----------------------------------------------------------------


def test_one_run_per_complete_day_with_iso_dates_like_the_doc(km):
    out = run_in_process(CONFIG)
    assert km.runs == days(0, 1, 2)  # today is not finished: not run
    body = km.requests_to(re.compile(rf"{QUERY}/v2/products/"))[0].json()
    assert body == {"start_date": iso(START), "end_date": iso(START)[:11] + "23:59:59+00:00"}
    assert out.count(STREAM) == 9
    first = out.records[STREAM][0]
    assert first == {
        "report_id": "r1",
        "window_start": iso(START),
        "window_end": iso(START + DAY),
        "row_number": 1,
        "values": [0, "u0"],
    }
    assert bookmarks(out.last_state)["report_windows"]["r1"]["done_through"] == iso(TODAY)
    assert out.count("kissmetrics_reports") == 1
    assert out.records["kissmetrics_reports"][0]["links"][1]["rel"] == "run"


def test_bearer_token_on_both_hosts(km):
    run_in_process(CONFIG)
    hosts = {r.hostname for r in km.mocker.request_history}
    assert hosts == {"api.km.test", "query.km.test"}
    assert {r.headers["Authorization"] for r in km.mocker.request_history} == {
        "Bearer km-secret-token"
    }


def test_the_token_goes_to_no_host_but_the_two_configured(km):
    km.reports = [report(run_href="https://elsewhere.test/v2/products/p/reports/r1/run")]
    km.mocker.post("https://elsewhere.test/v2/products/p/reports/r1/run", status_code=202)
    with pytest.raises(TapSegmentsError, match=r"elsewhere\.test.*kissmetrics_query_base_url"):
        run_in_process(CONFIG)
    assert not any(r.hostname == "elsewhere.test" for r in km.mocker.request_history)


def test_the_run_link_is_followed_not_built(km):
    # The doc's run link lives on the core host, under /query/..., unlike its example.
    doc_style = f"{API}/query/reports/r1/run"
    km.reports = [report(run_href=doc_style)]
    km.mocker.post(doc_style, json=km.run)
    out = run_in_process(CONFIG)
    assert [r.url for r in km.mocker.request_history if r.method == "POST"] == [doc_style] * 3
    assert out.count(STREAM) == 9


def test_run_answer_without_location_follows_its_query_status_link(km):
    def run(request: t.Any, context: t.Any) -> dict:
        km.run(request, context)
        href = context.headers.pop("Location")
        return {"links": [{"rel": "query-status", "href": href, "name": "Status"}]}

    km.mocker.post(RUN_URL, json=run)
    assert run_in_process(CONFIG).count(STREAM) == 9


def test_run_answer_without_location_or_link_names_report_and_window(km):
    km.mocker.post(RUN_URL, status_code=202, json={"data": {"message": "success"}})
    with pytest.raises(MalformedResponseError, match=rf"report r1, window {re.escape(iso(START))}"):
        run_in_process(CONFIG)


# -- status -------------------------------------------------------------------------------


def test_202_and_200_mean_running_and_the_progress_is_logged(km, caplog):
    km.polls_needed = {"q1": 3}
    with caplog.at_level(logging.INFO):
        out = run_in_process(CONFIG)
    assert km.polls["q1"] == 3  # 202, then 200 with progress 0.5, then 201 + Location
    assert any("q1" in m and "(50%)" in m for m in caplog.messages)
    assert out.count(STREAM) == 9


def test_a_200_that_says_completed_with_a_results_link_is_done(km):
    def status(request: t.Any, context: t.Any) -> dict:
        query = STATUS.match(request.url).group(1)
        href = f"{QUERY}/v2/queries/{query}/results"
        return {
            "data": {"completed": True, "progress": 1.0},
            "links": [{"rel": "query-results", "href": href, "name": "Results"}],
        }

    km.mocker.get(STATUS, json=status)
    assert run_in_process(CONFIG).count(STREAM) == 9


def test_completed_status_without_location_names_report_and_window(km):
    km.mocker.get(STATUS, json={"data": {"completed": True}}, status_code=201)
    out, error = sync(CONFIG)
    assert isinstance(error, MalformedResponseError)
    assert f"report r1, window {iso(START)}/{iso(START + DAY)}" in str(error)
    assert "Location" in str(error)
    state = bookmarks(out.last_state)
    # Resumed next time (a window whose run a worker had triggered meanwhile is kept too).
    assert f"r1/{iso(START)}" in state["exports_in_flight"]
    assert "report_windows" not in state or not state["report_windows"].get("r1")


# -- paging -------------------------------------------------------------------------------


def test_pages_follow_limit_and_offset_until_total(km):
    km.rows = 120
    out = run_in_process({**CONFIG, "start_date": (TODAY - DAY).isoformat()})
    offsets = [r.qs["offset"][0] for r in km.requests_to(RESULTS)]
    assert offsets == ["0", "50", "100"]
    assert [r["row_number"] for r in out.records[STREAM]] == list(range(1, 121))
    assert [r["values"][0] for r in out.records[STREAM]] == list(range(120))


def test_pages_follow_the_next_link_when_the_api_gives_one(km):
    km.rows = 120
    km.next_link = lambda offset, limit: f"results?limit=40&offset={offset}"  # relative
    out = run_in_process({**CONFIG, "start_date": (TODAY - DAY).isoformat()})
    pages = [(r.qs["limit"][0], r.qs["offset"][0]) for r in km.requests_to(RESULTS)]
    assert pages == [("50", "0"), ("40", "50"), ("40", "90")]
    assert [r["values"][0] for r in out.records[STREAM]] == list(range(120))


def short_first_page(body: dict) -> None:
    body["data"] = body["data"][:-1]


def extra_row(body: dict) -> None:
    body["data"].append([999, "extra"])


def total_grows(body: dict) -> None:
    if body["pagination"]["offset"]:
        body["pagination"]["total"] += 1


def skipped_offset(body: dict) -> None:
    if body["pagination"]["offset"]:
        body["pagination"]["offset"] += 1


@pytest.mark.parametrize("corrupt", [short_first_page, extra_row, total_grows, skipped_offset])
def test_pages_that_disagree_with_the_total_stop_the_run_and_hold_the_bookmark(km, corrupt):
    km.rows = 70  # two pages a window

    def results(request: t.Any, context: t.Any) -> dict:
        body = km.results(request, context)
        if RESULTS.match(request.url).group(1) == "q2":  # the second window only
            corrupt(body)
        return body

    km.mocker.get(RESULTS, json=results)
    out, error = sync(CONFIG)
    assert isinstance(error, MalformedResponseError)
    assert f"report r1, window {iso(START + DAY)}/{iso(START + 2 * DAY)}" in str(error)
    assert "pagination.total" in str(error)
    windows = bookmarks(out.last_state)["report_windows"]["r1"]
    assert windows == {"done_through": iso(START + DAY), "done_ahead": {}}
    first = [r for r in out.records[STREAM] if r["window_start"] == iso(START)]
    assert len(first) == 70


def test_results_gone_run_the_window_again_once(km):
    gone = {"q1"}

    def results(request: t.Any, context: t.Any) -> dict:
        if RESULTS.match(request.url).group(1) in gone:
            context.status_code = 404
            return {"error": "not found"}
        return km.results(request, context)

    km.mocker.get(RESULTS, json=results)
    out = run_in_process(CONFIG)
    assert sorted(km.runs) == days(0, 0, 1, 2)
    assert out.count(STREAM) == 9


# -- windows and bookmarks ------------------------------------------------------------------


def plan(first: dt.datetime, size_days: int, ahead=None, in_flight=None) -> list[tuple]:
    windows = plan_windows(first, size_days * DAY, TODAY, ahead or {}, in_flight or {})
    return [((s - START).days, (e - START).days) for s, e in windows]


def test_windows_are_whole_days_and_none_ends_after_today():
    assert plan(START, 1) == [(0, 1), (1, 2), (2, 3)]
    assert plan(START, 2) == [(0, 2)]  # [2, 4) would end tomorrow
    assert plan(START - DAY, 2) == [(-1, 1), (1, 3)]
    assert plan(TODAY, 1) == []


def test_windows_skip_what_was_emitted_ahead_and_keep_runs_in_flight():
    ahead = {iso(START + DAY): iso(START + 2 * DAY)}
    assert plan(START, 1, ahead) == [(0, 1), (2, 3)]
    in_flight = {iso(START): iso(START + DAY)}  # started when windows were one day
    assert plan(START, 2, in_flight=in_flight) == [(0, 1), (1, 3)]


def test_the_bookmark_moves_only_over_unbroken_windows():
    through, ahead = advance_bookmark("d0", {}, "d1", "d2")  # out of order: d0 not done
    assert (through, ahead) == ("d0", {"d1": "d2"})
    through, ahead = advance_bookmark(through, ahead, "d0", "d1")
    assert (through, ahead) == ("d2", {})


def test_a_start_date_inside_a_day_starts_at_its_midnight(km):
    run_in_process({**CONFIG, "start_date": (START + dt.timedelta(hours=15)).isoformat()})
    assert km.runs == days(0, 1, 2)


def test_without_start_date_windows_start_seven_days_ago_and_it_is_logged(km, caplog):
    config = {k: v for k, v in CONFIG.items() if k != "start_date"}
    with caplog.at_level(logging.INFO):
        run_in_process(config)
    assert km.runs == [iso(TODAY - n * DAY) for n in range(7, 0, -1)]
    assert any("no start_date" in m and "7 days ago" in m for m in caplog.messages)


def test_windows_finishing_out_of_order_never_move_the_bookmark_past_a_gap(km):
    km.polls_needed = {"q1": 12}  # the first window is slow; the next two finish first
    out = run_in_process({**CONFIG, "max_concurrent_exports": 3})
    seen = [bookmarks(s).get("report_windows", {}).get("r1") for s in out.states]
    ahead = [w for w in seen if w and w["done_ahead"]]
    assert ahead, "the later windows finished first"
    assert all(w["done_through"] == iso(START) for w in ahead)
    assert seen[-1] == {"done_through": iso(TODAY), "done_ahead": {}}
    assert out.count(STREAM) == 9


def test_the_sdk_bookmark_is_the_earliest_report_bookmark(km):
    km.reports = [report("r1"), report("r2", f"{QUERY}/v2/products/p/reports/r2/run")]
    km.polls_needed = {"q1": 12}
    state = {
        "bookmarks": {
            STREAM: {"report_windows": {"r2": {"done_through": iso(START + DAY), "done_ahead": {}}}}
        }
    }
    out = run_in_process({**CONFIG, "max_concurrent_exports": 3}, state=state)
    assert len(km.runs) == 3 + 2
    for value in out.states[1:]:
        stream = bookmarks(value)
        assert "progress_markers" not in stream
        earliest = min(w["done_through"] for w in stream["report_windows"].values())
        if len(stream["report_windows"]) == 2:
            assert stream["replication_key_value"] == earliest
    final = bookmarks(out.last_state)
    assert (final["replication_key"], final["replication_key_value"]) == ("window_end", iso(TODAY))


def test_rerun_with_the_final_state_runs_no_window_twice(km):
    first = run_in_process(CONFIG)
    second = run_in_process(CONFIG, state=first.last_state)
    assert len(km.runs) == 3 and second.count(STREAM) == 0


def test_a_run_in_flight_is_resumed_with_its_own_window(km):
    """Started when windows were one day; resumed after kissmetrics_window_days became 3."""
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    job = {
        "job_id": "q7",
        "started_at": started,
        "data": {"status_url": f"{QUERY}/v2/queries/q7/status", "window_end": iso(START + DAY)},
    }
    state = {"bookmarks": {STREAM: {"exports_in_flight": {f"r1/{iso(START)}": job}}}}
    out = run_in_process({**CONFIG, "kissmetrics_window_days": 3}, state=state)
    assert km.runs == []  # polled, not run again; [START+1, START+4) ends tomorrow
    assert {r["window_end"] for r in out.records[STREAM]} == {iso(START + DAY)}
    final = bookmarks(out.last_state)
    assert final["exports_in_flight"] == {}
    assert final["report_windows"]["r1"]["done_through"] == iso(START + DAY)


def test_report_ids_limit_the_reports_and_unknown_ids_are_named(km, caplog):
    km.reports = [report("r1"), report("r2", f"{QUERY}/v2/products/p/reports/r2/run")]
    with caplog.at_level(logging.WARNING):
        out = run_in_process({**CONFIG, "kissmetrics_report_ids": ["r2", "nope"]})
    assert [r["id"] for r in out.records["kissmetrics_reports"]] == ["r2"]
    assert {r["report_id"] for r in out.records[STREAM]} == {"r2"}
    assert any("nope" in m for m in caplog.messages)
