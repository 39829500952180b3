"""Stream maps through the SDK's standard mapper config (``stream_maps`` in the config).

A map on a column that exists only in the export files (``email``: announced at run time,
not at discovery) hashes it in every record, CSV rows (Indicative) and JSON rows (Artisan)
alike; a stream mapped to null (``None`` or ``"__NULL__"``) is dropped, SCHEMA included;
every other value is what an unmapped run emits.
"""

from __future__ import annotations

import hashlib
import typing as t

import pytest
from singer_output import STABLE_KEYS, SyncOutput, run_cli

from simulator import SimConfig, Simulator
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig

HASHED = ("indicative_segment_members", "artisan_segment_members")
DROPPED = "indicative_segments"


@pytest.fixture(scope="module")
def sim():
    config = SimConfig(
        seed=21,
        indicative=IndicativeConfig(segments=3, rows_per_segment=40),
        artisan=ArtisanConfig(apps=1, segments_per_app=2, members_per_segment=25),
    )
    with Simulator(config) as simulator:
        yield simulator


def config_for(sim: Simulator, **extra: t.Any) -> dict[str, t.Any]:
    vendors = {k: v for k, v in sim.tap_config().items() if k.startswith(("indic", "artisan"))}
    fast = {"export_poll_interval_seconds": 0.02, "export_poll_max_interval_seconds": 0.05}
    return {**vendors, **fast, **extra}


def keyed(out: SyncOutput, stream: str) -> dict[tuple, dict]:
    """Records under their stable key, without the id of the export that produced them."""
    return {
        tuple(r[k] for k in STABLE_KEYS[stream]): {
            c: v for c, v in r.items() if c not in ("exportId", "job_id")
        }
        for r in out.records[stream]
    }


@pytest.mark.parametrize("drop", [None, "__NULL__"])
def test_stream_maps_hash_a_file_column_and_drop_a_stream(sim, tmp_path, drop):
    plain = run_cli(tmp_path, config_for(sim))
    maps = {**{stream: {"email": "md5(email)"} for stream in HASHED}, DROPPED: drop}
    mapped = run_cli(tmp_path, config_for(sim, stream_maps=maps))
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert mapped.returncode == 0, mapped.stderr[-2000:]

    assert DROPPED in plain.records
    assert DROPPED not in mapped.records
    assert not mapped.schemas(DROPPED)
    for stream in HASHED:
        before, after = keyed(plain, stream), keyed(mapped, stream)
        assert before.keys() == after.keys() and len(after) == sim.truth()[stream]
        for key, record in before.items():
            expected = {**record, "email": hashlib.md5(record["email"].encode()).hexdigest()}
            assert after[key] == expected
        assert "email" in mapped.schemas(stream)[-1]["properties"]
    mapped.assert_columns_announced()
    assert set(mapped.records) == set(plain.records) - {DROPPED}


def test_hashed_emails_are_the_vendor_emails(sim, tmp_path):
    maps = {"indicative_segment_members": {"email": "md5(email)"}}
    out = run_cli(tmp_path, config_for(sim, stream_maps=maps))
    assert out.returncode == 0, out.stderr[-2000:]
    truth = {
        (segment["segmentId"], row["userId"]): row["email"]
        for segment in sim.indicative.segments
        for row in sim.indicative.member_rows(segment["segmentId"])
    }
    members = out.records["indicative_segment_members"]
    assert len(members) == len(truth)
    for member in members:
        plain = truth[(member["segmentId"], member["userId"])]
        assert member["email"] == hashlib.md5(plain.encode()).hexdigest()
