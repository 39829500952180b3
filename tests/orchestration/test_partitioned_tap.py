"""The tap, split as a partition plan splits it: what ``ORG_WIDE_STREAMS`` and ``ID_SETTINGS``
claim holds. Each vendor is synced whole, then as two partitions with disjoint halves of its id
setting (each against a fresh simulator, so every run sees the same vendor data): a stream the
id setting limits is shared out (the halves add up to the whole, no key in both); an org-wide
stream comes whole from each half, which is why only one partition may emit it."""

from __future__ import annotations

import typing as t

import pytest
from singer_output import SyncOutput, run_in_process

from orchestration.plan import ID_SETTINGS, ORG_WIDE_STREAMS
from simulator import SimConfig, Simulator
from tap_segments.vendors import VENDORS

FAST = {
    "export_poll_interval_seconds": 0.02,
    "export_poll_max_interval_seconds": 0.05,
    "http_retry_base_seconds": 0.05,
}
SEED = 11


def all_ids(sim: Simulator, vendor: str) -> list[str]:
    """The values of the vendor's id setting that cover all its data."""
    if vendor == "artisan":
        return [app["id"] for app in sim.artisan.apps]
    if vendor == "indicative":
        return [segment["segmentId"] for segment in sim.indicative.segments]
    if vendor == "kissmetrics":
        return list(sim.kissmetrics.state.report_ids)
    return ["SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB"]


def sync(vendor: str, ids: list[str] | None) -> SyncOutput:
    with Simulator(SimConfig(seed=SEED)) as sim:
        config = {k: v for k, v in sim.tap_config().items() if k.startswith(vendor)}
        if ids is not None:
            config[ID_SETTINGS[vendor]] = ids
        return run_in_process({**config, **FAST})


def keys(out: SyncOutput, stream: str, key_properties: t.Sequence[str]) -> set[tuple]:
    return {tuple(r.get(k) for k in key_properties) for r in out.records.get(stream, [])}


@pytest.mark.parametrize("vendor", list(ID_SETTINGS))
def test_id_setting_shares_out_every_stream_but_the_org_wide_ones(vendor):
    with Simulator(SimConfig(seed=SEED)) as sim:
        ids = all_ids(sim, vendor)
    whole, first, second = sync(vendor, None), sync(vendor, ids[0::2]), sync(vendor, ids[1::2])
    streams = {s.name: s.primary_keys for v in VENDORS if v.name == vendor for s in v.streams}
    for stream, key_properties in streams.items():
        counts = (whole.count(stream), first.count(stream), second.count(stream))
        assert counts[0] > 0, f"{stream}: the simulator serves nothing to split"
        if stream in ORG_WIDE_STREAMS[vendor]:
            assert counts == (counts[0],) * 3, f"{stream} is org-wide: each half emits it whole"
        else:
            assert counts[1] + counts[2] == counts[0], f"{stream} is not shared out: {counts}"
            both = keys(first, stream, key_properties) & keys(second, stream, key_properties)
            assert not both, f"{stream}: keys in both partitions: {sorted(both)[:3]}"
