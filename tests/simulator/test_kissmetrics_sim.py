"""The simulator's Kissmetrics: both hosts, Bearer auth, run -> status -> paginated results."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from simulator import SimConfig, Simulator
from simulator.kissmetrics import KissmetricsConfig, kissmetrics_apps

DAY = dt.timedelta(days=1)


@pytest.fixture
def sim():
    config = KissmetricsConfig(reports=2, max_rows_per_window=120, polls_to_complete=3)
    with Simulator(SimConfig(seed=7, kissmetrics=config)) as simulator:
        yield simulator


def bearer(sim: Simulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.tap_config()['kissmetrics_api_token']}"}


def reports(sim: Simulator) -> list[dict]:
    url = f"{sim.tap_config()['kissmetrics_api_base_url']}/core/reports"
    return requests.get(url, headers=bearer(sim)).json()


def run_link(report: dict) -> str:
    return next(item["href"] for item in report["links"] if item["rel"] == "run")


def body(start: str = "2026-06-02T00:00:00+00:00") -> dict[str, str]:
    return {"start_date": start, "end_date": start[:11] + "23:59:59+00:00"}


def test_both_hosts_need_the_bearer_token(sim):
    config = sim.tap_config()
    reports_url = f"{config['kissmetrics_api_base_url']}/core/reports"
    assert requests.get(reports_url).status_code == 401
    assert requests.get(reports_url, headers={"Authorization": "Bearer nope"}).status_code == 401
    run = run_link(reports(sim)[0])
    assert requests.post(run, json=body()).status_code == 401


def test_reports_have_the_documented_fields_and_run_links_on_the_query_host(sim):
    listed = reports(sim)
    assert [r["id"] for r in listed] == sim.kissmetrics.state.report_ids
    fields = {"links", "created_at", "name", "report_type", "account_id", "product_id", "id"}
    assert all(set(r) == fields for r in listed)
    assert [item["rel"] for item in listed[0]["links"]] == ["self", "run", "product", "account"]
    query_base = sim.tap_config()["kissmetrics_query_base_url"]
    assert run_link(listed[0]).startswith(f"{query_base}/v2/products/")


def test_a_run_is_polled_to_completion_then_paged(sim):
    report_id = sim.kissmetrics.state.report_ids[0]
    run = requests.post(run_link(reports(sim)[0]), json=body(), headers=bearer(sim))
    assert run.status_code == 202
    status_url = run.headers["Location"]
    assert run.json()["links"][0] == {
        "templated": False,
        "href": status_url,
        "rel": "query-status",
        "name": "Status",
    }

    answers = [requests.get(status_url, headers=bearer(sim)) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 200, 201]
    assert [a.json()["data"]["completed"] for a in answers] == [False, False, True]
    assert 0 < answers[1].json()["data"]["progress"] < 1
    results_url = answers[2].headers["Location"]
    results_link = answers[2].json()["links"][1]
    assert (results_link["rel"], results_link["href"]) == ("query-results", results_url)

    total = sim.kissmetrics.state.rows_in_window(report_id, body()["start_date"])
    rows, url = [], f"{results_url}?limit=50&offset=0"
    while url:
        page = requests.get(url, headers=bearer(sim)).json()
        assert page["pagination"]["total"] == total and page["pagination"]["limit"] == 50
        rows += page["data"]
        url = next((x["href"] for x in page["links"] if x["rel"] == "next"), None)
    assert len(rows) == total and all(isinstance(row, list) for row in rows)
    assert rows == [
        sim.kissmetrics.state.row(report_id, body()["start_date"], i) for i in range(total)
    ]
    assert sim.kissmetrics.state.runs == {(report_id, body()["start_date"]): 1}


def test_a_run_needs_a_date_range(sim):
    run = run_link(reports(sim)[0])
    for bad in (
        {},
        {"start_date": "yesterday", "end_date": "today"},
        body() | {"end_date": "2026-06-01T00:00:00+00:00"},
    ):
        assert requests.post(run, json=bad, headers=bearer(sim)).status_code == 400
    assert sim.kissmetrics.state.runs == {}


def test_rows_per_window_are_deterministic_and_match_the_truth():
    now = dt.datetime(2026, 6, 10, 15, tzinfo=dt.timezone.utc)
    first, second = (kissmetrics_apps(7, KissmetricsConfig(reports=2))[0] for _ in range(2))
    windows = first.rows_by_window("2026-06-07T08:00:00Z", now=now)
    assert windows == second.rows_by_window("2026-06-07T08:00:00Z", now=now)
    assert sorted({start for _, start in windows}) == [
        "2026-06-07T00:00:00+00:00",
        "2026-06-08T00:00:00+00:00",
        "2026-06-09T00:00:00+00:00",
    ]  # whole UTC days, none ending after the start of ``now``'s day
    assert first.expected_rows("2026-06-07T08:00:00Z", now=now) == sum(windows.values())
    two_days = first.rows_by_window("2026-06-07T00:00:00Z", window_days=2, now=now)
    assert sorted({start for _, start in two_days}) == ["2026-06-07T00:00:00+00:00"]


def test_switches_for_bad_answers(sim):
    state = sim.kissmetrics.state
    state.config.omit_location, state.config.total_off_by = True, 1
    state.config.polls_to_complete = 1
    run = requests.post(run_link(reports(sim)[0]), json=body(), headers=bearer(sim))
    done = requests.get(run.headers["Location"], headers=bearer(sim))
    assert done.status_code == 201 and "Location" not in done.headers
    assert [x["rel"] for x in done.json()["links"]] == ["self"]
    results = run.headers["Location"].replace("/status", "/results")
    page = requests.get(results, headers=bearer(sim)).json()
    total = state.rows_in_window(state.report_ids[0], body()["start_date"])
    assert page["pagination"]["total"] == total + 1


def test_the_runs_control_endpoint(sim):
    report_id = sim.kissmetrics.state.report_ids[1]
    requests.post(run_link(reports(sim)[1]), json=body(), headers=bearer(sim))
    runs = requests.get(f"{sim.url}/_sim/kissmetrics-api/runs").json()
    assert runs == {f"{report_id}|{body()['start_date']}": 1}
