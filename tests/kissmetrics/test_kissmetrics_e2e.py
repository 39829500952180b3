"""Kissmetrics end to end: the CLI against the simulator, rerun, and kill -9 mid-poll."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from singer_output import SyncOutput, kill_run, run_cli

from simulator import SimConfig, Simulator
from simulator.kissmetrics import KissmetricsConfig

START = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=6)).date().isoformat() + "T00:00:00Z"
STREAM = "kissmetrics_report_results"


@pytest.fixture
def sim():
    with Simulator(SimConfig(seed=5, kissmetrics=KissmetricsConfig(reports=3))) as simulator:
        yield simulator


def config_for(sim: Simulator, **extra: object) -> dict:
    config = {k: v for k, v in sim.tap_config().items() if k.startswith("kissmetrics")}
    return {
        **config,
        "start_date": START,
        "export_poll_interval_seconds": 0.02,
        "export_poll_max_interval_seconds": 0.05,
        **extra,
    }


def keys(out: SyncOutput) -> list[tuple]:
    return [
        (r["report_id"], r["window_start"], r["row_number"]) for r in out.records.get(STREAM, [])
    ]


def expected_keys(sim: Simulator) -> set[tuple]:
    return {
        (report_id, start, number)
        for (report_id, start), rows in sim.kissmetrics.rows_by_window(START).items()
        for number in range(1, rows + 1)
    }


def run_posts(sim: Simulator) -> int:
    return sum(1 for e in sim.requests if e.method == "POST" and e.path.endswith("/run"))


def test_full_sync_is_exact_and_a_rerun_runs_no_window_twice(sim, tmp_path):
    out = run_cli(tmp_path, config_for(sim))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.count("kissmetrics_reports") == 3
    rows = Counter((r["report_id"], r["window_start"]) for r in out.records[STREAM])
    truth = sim.kissmetrics.rows_by_window(START)
    assert len(truth) == 3 * 6
    assert {window: rows.get(window, 0) for window in truth} == truth
    assert sorted(keys(out)) == sorted(expected_keys(sim))  # exact, no key twice
    assert run_posts(sim) == 3 * 6 and set(sim.kissmetrics.state.runs.values()) == {1}

    again = run_cli(tmp_path, config_for(sim), out.last_state)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.count(STREAM) == 0 and run_posts(sim) == 3 * 6


def test_killed_mid_poll_reruns_no_recorded_window_and_loses_no_row(sim, tmp_path):
    sim.kissmetrics.state.config.polls_to_complete = 6
    config = config_for(sim, max_concurrent_exports=2)

    def done_and_in_flight(state: dict) -> bool:
        stream = state["bookmarks"].get(STREAM, {})
        return bool(stream.get("exports_in_flight")) and bool(stream.get("report_windows"))

    state, before_kill = kill_run(tmp_path, config, done_and_in_flight)
    stream = state["bookmarks"][STREAM]
    in_flight = stream["exports_in_flight"]
    done = {
        (report_id, start)
        for report_id, windows in stream["report_windows"].items()
        for start, _ in windows["done_ahead"].items()
    }
    runs_before = dict(sim.kissmetrics.state.runs)
    log_before = len(sim.requests)

    sim.kissmetrics.state.config.polls_to_complete = 2
    resumed = run_cli(tmp_path, config, state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = sim.kissmetrics.state.runs
    for key, job in in_flight.items():  # "report/window_start": polled, not run again
        report_id, start = key.split("/", 1)
        assert runs[(report_id, start)] == runs_before[(report_id, start)]
        polled = [e for e in sim.requests[log_before:] if job["job_id"] in e.path]
        assert polled, f"the run of {key} in state was not resumed"
    for report_id, start in done:
        assert runs[(report_id, start)] == runs_before[(report_id, start)]
    for report_id, windows in stream["report_windows"].items():
        through = windows["done_through"]
        assert all(s >= through for (r, s) in runs if r == report_id and runs[(r, s)] > 1)

    committed = set(keys(before_kill))  # what a target read before that STATE
    assert committed | set(keys(resumed)) == expected_keys(sim)  # no row lost
    assert len(keys(resumed)) == len(set(keys(resumed)))


def test_pages_disagreeing_with_the_total_end_the_run_with_one_clear_line(sim, tmp_path):
    sim.kissmetrics.state.config.total_off_by = 1
    out = run_cli(tmp_path, config_for(sim, max_concurrent_exports=1))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    first_report = sim.kissmetrics.state.report_ids[0]
    assert f"report {first_report}, window {START[:10]}" in last and "pagination.total" in last
    assert not out.last_state["bookmarks"][STREAM].get("report_windows")
