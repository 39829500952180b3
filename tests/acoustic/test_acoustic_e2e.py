"""Acoustic Exchange end to end: exact counts, no file twice, read-only unless told."""

from __future__ import annotations

from collections import Counter

import pytest
from singer_output import run_cli

from simulator import SimConfig, Simulator
from simulator.acoustic import AcousticConfig

STREAMS = ("acoustic_jobs", "acoustic_scheduled_jobs", "acoustic_segment_data")


@pytest.fixture
def sim():
    with Simulator(SimConfig(seed=8, acoustic=AcousticConfig(gzip=True))) as simulator:
        yield simulator


def config_for(sim: Simulator, **extra) -> dict:
    return {**{k: v for k, v in sim.tap_config().items() if k.startswith("acoustic")}, **extra}


def methods(sim: Simulator) -> Counter:
    return Counter(entry.method for entry in sim.requests if entry.vendor == "acoustic")


def test_full_sync_is_exact_read_only_and_a_rerun_emits_no_file_twice(sim, tmp_path):
    out = run_cli(tmp_path, config_for(sim))
    assert out.returncode == 0, out.stderr[-2000:]
    truth = sim.truth()
    assert {s: out.count(s) for s in STREAMS} == {s: truth[s] for s in STREAMS}
    out.assert_columns_announced()
    files = {(r["jobId"], r["file_name"]) for r in out.records["acoustic_segment_data"]}
    assert files == set(sim.acoustic.ready_files())
    job = out.records["acoustic_jobs"][0]
    assert isinstance(job["started"], int) and job["started_iso"].endswith("+00:00")
    assert set(methods(sim)) == {"GET"}  # setting off: nothing but reads

    again = run_cli(tmp_path, config_for(sim), out.last_state)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.count("acoustic_segment_data") == 0
    assert set(methods(sim)) == {"GET"}


def test_mark_complete_sends_exactly_one_put_per_fully_downloaded_job(sim, tmp_path):
    ready_jobs = {job_id for job_id, _ in sim.acoustic.ready_files()}
    out = run_cli(tmp_path, config_for(sim, acoustic_mark_complete=True, acoustic_endpoint_id="7"))
    assert out.returncode == 0, out.stderr[-2000:]
    puts = [e.path for e in sim.requests if e.method == "PUT"]
    assert sorted(puts) == sorted(f"/v1/jobs/{job_id}/status/complete" for job_id in ready_jobs)
    assert not {"DELETE", "POST"} & set(methods(sim))


def test_deleted_file_is_reported_by_name_and_the_others_load(sim, tmp_path):
    ready = set(sim.acoustic.ready_files())
    job_id, name = sorted(ready)[0]
    sim.acoustic.deleted_files.add((job_id, name))
    out = run_cli(tmp_path, config_for(sim, acoustic_mark_complete=True, acoustic_endpoint_id="7"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"file {name} answered 404" in out.stderr
    files = {(r["jobId"], r["file_name"]) for r in out.records["acoustic_segment_data"]}
    assert files == ready - {(job_id, name)}
    puts = {e.path for e in sim.requests if e.method == "PUT"}
    assert f"/v1/jobs/{job_id}/status/complete" not in puts  # not fully downloaded
