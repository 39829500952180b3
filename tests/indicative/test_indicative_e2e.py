"""Indicative end to end: the CLI against the simulator, exact counts, rerun, kill and resume."""

from __future__ import annotations

import pytest
from singer_output import SyncOutput, kill_when, run_cli

from simulator import SimConfig, Simulator

STREAMS = ("indicative_segments", "indicative_segment_exports", "indicative_segment_members")
FAST = {
    "export_poll_interval_seconds": 0.05,
    "export_poll_max_interval_seconds": 0.2,
    "http_retry_base_seconds": 0.05,
}


@pytest.fixture
def sim():
    with Simulator(SimConfig(seed=7)) as simulator:
        yield simulator


def config_for(sim: Simulator, **extra) -> dict:
    return {**sim.tap_config(), **FAST, **extra}


def indicative_only(sim: Simulator) -> dict:
    return {
        k: v
        for k, v in config_for(sim).items()
        if not k.startswith(("artisan", "kiss", "acoustic"))
    }


def member_keys(out: SyncOutput) -> set[tuple]:
    return {
        (r["segmentId"], r["exportId"], r["row_number"])
        for r in out.records.get("indicative_segment_members", [])
    }


def test_full_sync_emits_exactly_the_simulators_rows(sim, tmp_path):
    out = run_cli(tmp_path, indicative_only(sim))
    assert out.returncode == 0, out.stderr[-2000:]
    truth = sim.truth()
    assert out.count("indicative_segments") == truth["indicative_segments"]
    assert out.count("indicative_segment_members") == truth["indicative_segment_members"]
    segments_with_members = {r["segmentId"] for r in out.records["indicative_segment_exports"]}
    assert len(segments_with_members) == truth["indicative_segments"]
    assert len(member_keys(out)) == out.count("indicative_segment_members")  # no duplicates
    out.assert_columns_announced()
    bookmarks = out.last_state["bookmarks"]
    assert bookmarks["indicative_segment_exports"]["exports_in_flight"] == {}
    assert (
        set(bookmarks["indicative_segment_exports"]["segments_exported"]) == segments_with_members
    )


def test_rerun_with_final_state_triggers_no_export(sim, tmp_path):
    first = run_cli(tmp_path, indicative_only(sim))
    triggers_before = sim.indicative.trigger_count()
    second = run_cli(tmp_path, indicative_only(sim), first.last_state)
    assert second.returncode == 0, second.stderr[-2000:]
    assert sim.indicative.trigger_count() == triggers_before
    assert second.count("indicative_segment_members") == 0


def test_killed_while_polling_resumes_without_second_export_or_loss(sim, tmp_path):
    """kill -9 while exports poll; restart with the last STATE printed: no re-trigger, no loss."""
    sim.indicative.polls_to_complete = 40  # slow exports: the kill lands mid-poll
    config = indicative_only(sim)

    def two_exports_in_flight(state: dict) -> bool:
        exports = state["bookmarks"].get("indicative_segment_exports", {})
        return len(exports.get("exports_in_flight", {})) >= 2

    last_state = kill_when(tmp_path, config, two_exports_in_flight)
    recorded = set(last_state["bookmarks"]["indicative_segment_exports"]["exports_in_flight"])
    triggers = sim.indicative.trigger_counts()

    sim.indicative.polls_to_complete = 2
    resumed = run_cli(tmp_path, config, last_state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = sim.indicative.trigger_counts()
    for segment_id in recorded:
        assert after[segment_id] == triggers[segment_id], f"{segment_id} was exported twice"
    # No row lost: every member of every segment arrived in the resumed run.
    truth = sim.truth()
    assert resumed.count("indicative_segment_members") == truth["indicative_segment_members"]
