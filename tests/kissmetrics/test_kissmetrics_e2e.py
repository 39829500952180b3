"""Kissmetrics end to end: the CLI against the simulator, rerun, and kill -9 mid-poll."""

from __future__ import annotations

import datetime as dt

import pytest
from singer_output import SyncOutput, kill_when, run_cli

from simulator import SimConfig, Simulator
from simulator.kissmetrics import KissmetricsConfig

START = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=6)).date().isoformat() + "T00:00:00Z"


@pytest.fixture
def sim():
    with Simulator(SimConfig(seed=5, kissmetrics=KissmetricsConfig(reports=3))) as simulator:
        yield simulator


def config_for(sim: Simulator) -> dict:
    config = {k: v for k, v in sim.tap_config().items() if k.startswith("kissmetrics")}
    return {
        **config,
        "start_date": START,
        "export_poll_interval_seconds": 0.02,
        "export_poll_max_interval_seconds": 0.05,
    }


def keys(out: SyncOutput) -> set[tuple]:
    rows = out.records.get("kissmetrics_report_results", [])
    return {(r["report_id"], r["window_start"], r["row_number"]) for r in rows}


def test_full_sync_then_rerun_runs_no_window_twice(sim, tmp_path):
    out = run_cli(tmp_path, config_for(sim))
    assert out.returncode == 0, out.stderr[-2000:]
    expected = sim.kissmetrics.expected_rows(START)
    assert out.count("kissmetrics_reports") == 3
    assert out.count("kissmetrics_report_results") == expected == len(keys(out))
    runs = dict(sim.kissmetrics.state.runs)
    assert len(runs) == 3 * 6 and set(runs.values()) == {1}
    again = run_cli(tmp_path, config_for(sim), out.last_state)
    assert again.returncode == 0 and again.count("kissmetrics_report_results") == 0
    assert sim.kissmetrics.state.runs == runs


def test_killed_mid_poll_reruns_no_recorded_window_and_loses_no_row(sim, tmp_path):
    sim.kissmetrics.state.config.polls_to_complete = 30
    config = {**config_for(sim), "max_concurrent_exports": 2}

    def runs_in_flight(state: dict) -> bool:
        stream = state["bookmarks"].get("kissmetrics_report_results", {})
        return len(stream.get("exports_in_flight", {})) >= 2

    state = kill_when(tmp_path, config, runs_in_flight)
    recorded = state["bookmarks"]["kissmetrics_report_results"]["exports_in_flight"]
    runs_before = dict(sim.kissmetrics.state.runs)
    sim.kissmetrics.state.config.polls_to_complete = 2
    resumed = run_cli(tmp_path, config, state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for key in recorded:  # "report/window_start": its run was polled, not run again
        report_id, start = key.split("/", 1)
        assert sim.kissmetrics.state.runs[(report_id, start)] == runs_before[(report_id, start)]
    assert len(keys(resumed)) == sim.kissmetrics.expected_rows(START)
