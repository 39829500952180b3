"""Artisan end to end: exact counts, rerun emits only jobs updated since, kill -9 and resume."""

from __future__ import annotations

import pytest
from singer_output import kill_when, run_cli

from simulator import SimConfig, Simulator
from simulator.artisan import ArtisanConfig

STREAMS = (
    "artisan_apps",
    "artisan_segments",
    "artisan_jobs",
    "artisan_profiles",
    "artisan_segment_members",
)


@pytest.fixture
def sim():
    with Simulator(SimConfig(seed=4, artisan=ArtisanConfig(gzip=True))) as simulator:
        yield simulator


def config_for(sim: Simulator, **extra) -> dict:
    config = {k: v for k, v in sim.tap_config().items() if k.startswith("artisan")}
    return {
        **config,
        "export_poll_interval_seconds": 0.02,
        "export_poll_max_interval_seconds": 0.05,
        **extra,
    }


def test_full_sync_then_rerun_emits_only_jobs_updated_since(sim, tmp_path):
    out = run_cli(tmp_path, config_for(sim))
    assert out.returncode == 0, out.stderr[-2000:]
    truth = sim.truth()
    assert {s: out.count(s) for s in STREAMS} == {s: truth[s] for s in STREAMS}
    out.assert_columns_announced()
    exports = len(sim.artisan.trigger_counts())  # 6 segments + 2 profile exports, made in run 1
    again = run_cli(tmp_path, config_for(sim), out.last_state)
    assert again.returncode == 0, again.stderr[-2000:]
    rerun_jobs = again.records.get("artisan_jobs", [])
    # The bookmark is inclusive (SDK-style), so the newest job of run 1 comes again too.
    newest = out.last_state["bookmarks"]["artisan_jobs"]["replication_key_value"]
    assert all(job["updated_at"] >= newest for job in rerun_jobs)
    assert len(rerun_jobs) >= exports  # the export jobs run 1 created


def test_killed_while_exports_poll_resumes_without_second_export_or_loss(sim, tmp_path):
    sim.artisan.config.polls_to_complete = 40
    config = config_for(sim, max_concurrent_exports=3)

    def segment_exports_in_flight(state: dict) -> bool:
        members = state["bookmarks"].get("artisan_segment_members", {})
        return len(members.get("exports_in_flight", {})) >= 3

    state = kill_when(tmp_path, config, segment_exports_in_flight)
    recorded = state["bookmarks"]["artisan_segment_members"]["exports_in_flight"]
    before = sim.artisan.trigger_counts()
    sim.artisan.config.polls_to_complete = 2
    resumed = run_cli(tmp_path, config, state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = sim.artisan.trigger_counts()
    for key in recorded:
        assert after[key] == before[key], f"segment {key} was exported twice"
    assert resumed.count("artisan_segment_members") == sim.truth()["artisan_segment_members"]
