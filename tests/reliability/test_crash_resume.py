"""Crash and resume: kill -9 a full sync of every vendor at 20 points, resume from its STATE.

A target commits what it read up to a STATE message, so after each kill we keep the records
printed before the last STATE, restart the tap with that STATE, and check that together they
hold every row of an uninterrupted sync (per key), and that no export the STATE recorded as
in flight was triggered again. Exports in state that the vendor expired or forgot are
triggered afresh, once.
"""

from __future__ import annotations

import datetime as dt

import pytest
from reliability_figures import FIGURES
from singer_output import STABLE_KEYS, SyncOutput, kill_run, run_cli

from simulator import SimConfig, Simulator
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig

KILL_POINTS = 20
#: The kill points are shared out among this many tests (so that pytest-xdist's workers run
#: them side by side): group g takes points g+1, g+1+KILL_GROUPS, ...
KILL_GROUPS = 4
START = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)).date().isoformat() + "T00:00:00Z"


def keys(out: SyncOutput) -> set[tuple]:
    return {
        (stream, *(record[k] for k in STABLE_KEYS[stream]))
        for stream, records in out.records.items()
        for record in records
    }


def triggers(sim: Simulator) -> dict[str, int]:
    """Export triggers so far, under the keys the tap's state uses for them."""
    counts = {
        f"indicative_segment_exports|{k}": n for k, n in sim.indicative.trigger_counts().items()
    }
    for key, n in sim.artisan.trigger_counts().items():
        app, what = key.split("/", 1)
        if what == "profiles":
            counts[f"artisan_profiles|{app}"] = n
        else:
            counts[f"artisan_segment_members|{key}"] = n
    for (report, start), n in sim.kissmetrics.state.runs.items():
        counts[f"kissmetrics_report_results|{report}/{start}"] = n
    return counts


def in_flight(state: dict) -> set[str]:
    return {
        f"{stream}|{key}"
        for stream, bookmark in state.get("bookmarks", {}).items()
        for key in bookmark.get("exports_in_flight", {})
    }


@pytest.fixture(scope="module")
def sim():
    config = SimConfig(
        seed=41,
        indicative=IndicativeConfig(segments=3, rows_per_segment=300, polls_to_complete=3),
        artisan=ArtisanConfig(
            apps=1, segments_per_app=2, members_per_segment=60, profiles_per_app=10
        ),
        kissmetrics=KissmetricsConfig(reports=1, max_rows_per_window=80),
        acoustic=AcousticConfig(jobs_per_category=3, rows_per_file=(20, 60)),
    )
    with Simulator(config) as simulator:
        yield simulator


def config_for(sim: Simulator) -> dict:
    return {
        **sim.tap_config(),
        "start_date": START,
        "export_poll_interval_seconds": 0.03,
        "export_poll_max_interval_seconds": 0.05,
        "max_concurrent_exports": 3,
    }


@pytest.fixture(scope="module")
def uninterrupted(sim, tmp_path_factory) -> tuple[set[tuple], int]:
    """The keys an uninterrupted sync emits, and how many STATE messages it writes."""
    reference = run_cli(tmp_path_factory.mktemp("reference"), config_for(sim))
    assert reference.returncode == 0, reference.stderr[-2000:]
    assert len(reference.states) > KILL_POINTS
    return keys(reference), len(reference.states)


@pytest.mark.parametrize("group", range(KILL_GROUPS))
def test_kill_at_20_points_loses_nothing_and_triggers_no_recorded_export_twice(
    sim, uninterrupted, tmp_path, group
):
    expected, states = uninterrupted
    problems = []
    for point in range(group + 1, KILL_POINTS + 1, KILL_GROUPS):
        index = max(1, point * states // (KILL_POINTS + 1))

        def at_point(_state: dict, index: int = index, seen: list = []) -> bool:  # noqa: B006
            seen.append(1)
            return len(seen) == index

        state, before_kill = kill_run(tmp_path, config_for(sim), at_point)
        recorded = in_flight(state)
        counts = triggers(sim)
        resumed = run_cli(tmp_path, config_for(sim), state)
        if resumed.returncode != 0:
            problems.append(f"point {point}: resume failed: {resumed.stderr[-500:]}")
            continue
        lost = expected - keys(before_kill) - keys(resumed)
        again = [key for key in recorded if triggers(sim).get(key, 0) != counts.get(key, 0)]
        FIGURES["rows_lost"] += len(lost)
        FIGURES["exports_retriggered"] += len(again)
        if lost or again:
            problems.append(
                f"point {point} (STATE {index}): lost {sorted(lost)[:3]}, re-triggered {again}"
            )
        else:
            FIGURES["kill_points_survived"] += 1
    assert not problems, problems


def test_stale_exports_in_state_are_triggered_afresh_once(sim, tmp_path):
    """One export expired (older than Indicative's 48 h), one forgotten by the vendor (404)."""
    config = {
        k: v
        for k, v in config_for(sim).items()
        if not k.startswith(("artisan", "kiss", "acoustic"))
    }
    sim.indicative.polls_to_complete = 50

    def two_in_flight(state: dict) -> bool:
        return len(in_flight(state)) >= 2

    state, _ = kill_run(tmp_path, config, two_in_flight)
    sim.indicative.polls_to_complete = 3
    flights = state["bookmarks"]["indicative_segment_exports"]["exports_in_flight"]
    (expired_segment, expired), (forgotten_segment, forgotten) = list(flights.items())[:2]
    sim.indicative.age_export(expired["job_id"], hours=49)
    two_days_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=49)
    expired["started_at"] = two_days_ago.isoformat()  # a state saved 49 hours ago
    del sim.indicative.exports[forgotten["job_id"]]
    before = sim.indicative.trigger_counts()
    resumed = run_cli(tmp_path, config, state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = sim.indicative.trigger_counts()
    assert after[expired_segment] == before[expired_segment] + 1
    assert after[forgotten_segment] == before[forgotten_segment] + 1
    assert "older than the vendor keeps exports" in resumed.stderr
    assert "no longer knows export" in resumed.stderr
    assert resumed.count("indicative_segment_members") == sim.truth()["indicative_segment_members"]
