"""BATCH messages (jsonl + gzip files) and stream maps, through the SDK's standard config."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from singer_output import SyncOutput, run_cli

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig

MEMBERS = "indicative_segment_members"


@pytest.fixture(scope="module")
def sim():
    config = SimConfig(seed=21, indicative=IndicativeConfig(segments=3, rows_per_segment=40))
    with Simulator(config) as simulator:
        yield simulator


def config_for(sim: Simulator, **extra) -> dict:
    indicative = {k: v for k, v in sim.tap_config().items() if k.startswith("indicative")}
    fast = {"export_poll_interval_seconds": 0.02, "export_poll_max_interval_seconds": 0.05}
    return {**indicative, **fast, **extra}


def batch_records(out: SyncOutput) -> dict[str, list[dict]]:
    records: dict[str, list[dict]] = {}
    for message in out.messages:
        if message["type"] != "BATCH":
            continue
        assert message["encoding"] == {"format": "jsonl", "compression": "gzip"}
        for url in message["manifest"]:
            with gzip.open(Path(url.removeprefix("file://"))) as lines:
                records.setdefault(message["stream"], []).extend(json.loads(line) for line in lines)
    return records


def by_key(records: list[dict], *key: str) -> dict[tuple, dict]:
    return {tuple(r[k] for k in key): r for r in records}


def test_batch_files_hold_exactly_the_records_of_a_normal_run(sim, tmp_path):
    normal = run_cli(tmp_path, config_for(sim))
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{tmp_path / 'batches'}", "prefix": "segments-"},
    }
    batched = run_cli(tmp_path, config_for(sim, batch_config=batch_config))
    assert batched.returncode == 0, batched.stderr[-2000:]
    assert not batched.records  # records travel in files, not RECORD messages
    files = batch_records(batched)
    assert {s: len(r) for s, r in files.items()} == {s: len(r) for s, r in normal.records.items()}
    key = ("segmentId", "row_number")
    normal_members = {k: v for k, v in by_key(normal.records[MEMBERS], *key).items()}
    batch_members = by_key(files[MEMBERS], *key)
    assert normal_members.keys() == batch_members.keys()
    assert all(
        {c: v for c, v in batch_members[k].items() if c != "exportId"}
        == {c: v for c, v in normal_members[k].items() if c != "exportId"}
        for k in normal_members
    )
    state = batched.last_state["bookmarks"]["indicative_segment_exports"]
    assert state["exports_in_flight"] == {} and len(state["segments_exported"]) == 3


def test_stream_maps_hash_a_file_column_and_drop_a_stream(sim, tmp_path):
    maps = {
        MEMBERS: {"email": "md5(email)"},
        "indicative_segments": None,
    }
    out = run_cli(tmp_path, config_for(sim, stream_maps=maps))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "indicative_segments" not in out.records
    members = out.records[MEMBERS]
    segment_id = members[0]["segmentId"]
    truth = {row["userId"]: row["email"] for row in sim.indicative.member_rows(segment_id)}
    for member in (m for m in members if m["segmentId"] == segment_id):
        assert member["email"] == hashlib.md5(truth[member["userId"]].encode()).hexdigest()
