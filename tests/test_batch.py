"""BATCH messages (the SDK's ``batch_config``: jsonl + gzip files in a local folder).

Every vendor, through the CLI against the simulator: BATCH messages replace RECORDs, their
files exist, decompress and hold exactly the records a normal run emits (compared by key,
dynamic file columns included); the parent/child Indicative streams and every export-driven
stream work; stream maps apply to the files as they do to RECORDs; and a STATE never
accounts for records still waiting for their file (a run killed at any STATE and resumed
from it loses nothing).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import typing as t
from pathlib import Path

import pytest
from singer_output import STABLE_KEYS, SyncOutput, kill_run, run_cli

from simulator import SimConfig, Simulator
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig

MEMBERS = "indicative_segment_members"
#: Fields that differ between two runs against identical simulators: ids of exports (the
#: simulator mints them in the order concurrent triggers arrive), their times and file
#: names, HAL links naming the simulator's port.
VOLATILE = {"exportId", "job_id", "startTime", "endTime", "filename", "links"}
KILL_POINTS = 5
START = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)).date().isoformat() + "T00:00:00Z"


def sim_config() -> SimConfig:
    return SimConfig(
        seed=21,
        indicative=IndicativeConfig(segments=3, rows_per_segment=40),
        artisan=ArtisanConfig(apps=1, segments_per_app=2, members_per_segment=30),
        kissmetrics=KissmetricsConfig(reports=1, max_rows_per_window=40),
        acoustic=AcousticConfig(jobs_per_category=2, rows_per_file=(10, 30)),
    )


def tap_config(sim: Simulator, **extra: t.Any) -> dict[str, t.Any]:
    return {
        **sim.tap_config(),
        "export_poll_interval_seconds": 0.02,
        "export_poll_max_interval_seconds": 0.05,
        **extra,
    }


def batch_config(folder: Path, batch_size: int | None = None) -> dict[str, t.Any]:
    config: dict[str, t.Any] = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{folder}", "prefix": "segments-"},
    }
    if batch_size is not None:
        config["batch_size"] = batch_size
    return config


def batch_records(out: SyncOutput) -> dict[str, list[dict]]:
    """The records in the files of every BATCH message ``out`` holds, per stream."""
    records: dict[str, list[dict]] = {}
    for message in out.messages:
        if message["type"] != "BATCH":
            continue
        assert message["encoding"] == {"format": "jsonl", "compression": "gzip"}
        assert message["manifest"], message
        for url in message["manifest"]:
            assert url.startswith("file://"), url
            path = Path(url.removeprefix("file://"))
            assert path.name.startswith("segments-"), path
            with gzip.open(path) as lines:
                records.setdefault(message["stream"], []).extend(json.loads(line) for line in lines)
    return records


def by_key(records: dict[str, list[dict]]) -> dict[str, dict[tuple, dict]]:
    """Per stream, each record under its stable key, without the run-dependent fields."""
    keyed: dict[str, dict[tuple, dict]] = {}
    for stream, rows in records.items():
        key = STABLE_KEYS[stream]
        keyed[stream] = {
            tuple(row[k] for k in key): {c: v for c, v in row.items() if c not in VOLATILE}
            for row in rows
        }
        assert len(keyed[stream]) == len(rows), f"{stream}: a key twice"
    return keyed


def test_batch_files_hold_exactly_the_records_of_a_normal_run(tmp_path):
    with Simulator(sim_config()) as sim:
        normal = run_cli(tmp_path, tap_config(sim))
        truth = sim.truth()
    with Simulator(sim_config()) as sim:
        folder = tmp_path / "batches"
        batched = run_cli(tmp_path, tap_config(sim, batch_config=batch_config(folder)))
    assert normal.returncode == 0, normal.stderr[-2000:]
    assert batched.returncode == 0, batched.stderr[-2000:]
    assert not batched.records  # records travel in files, not RECORD messages
    # The tap cannot see its target: it says once which targets read BATCH messages.
    warnings = [line for line in batched.stderr.splitlines() if "batch_config is set" in line]
    assert len(warnings) == 1 and "target-postgres" in warnings[0]
    assert "batch_config is set" not in normal.stderr
    files = batch_records(batched)
    assert {s: len(r) for s, r in files.items()} == truth
    assert by_key(files) == by_key(normal.records)
    # Every file a BATCH message names, and no other, is in the folder.
    named = {u for m in batched.messages if m["type"] == "BATCH" for u in m["manifest"]}
    assert {f"file://{p}" for p in folder.iterdir()} == named
    # Dynamic file columns were announced before their BATCH, as before their RECORDs.
    for stream in (MEMBERS, "artisan_segment_members", "acoustic_segment_data"):
        announced = set(batched.schemas(stream)[-1]["properties"])
        assert set().union(*(r.keys() for r in files[stream])) <= announced
    # The state after a batched run is the state after a normal one: nothing in flight,
    # every export and window recorded (a rerun from it exports nothing again).
    assert batched.last_state == normal.last_state


def test_a_stream_map_applies_to_batch_files_and_a_dropped_stream_gets_none(tmp_path):
    maps = {MEMBERS: {"email": "md5(email)"}, "indicative_segments": None}
    with Simulator(sim_config()) as sim:
        config = tap_config(sim, stream_maps=maps, batch_config=batch_config(tmp_path / "b"))
        config = {k: v for k, v in config.items() if not k.startswith(("artisan", "kiss", "acou"))}
        out = run_cli(tmp_path, config)
        assert out.returncode == 0, out.stderr[-2000:]
        emails = {
            (segment["segmentId"], row["userId"]): row["email"]
            for segment in sim.indicative.segments
            for row in sim.indicative.member_rows(segment["segmentId"])
        }
    files = batch_records(out)
    assert "indicative_segments" not in files
    assert not out.schemas("indicative_segments")
    assert len(files[MEMBERS]) == len(emails)
    for member in files[MEMBERS]:
        plain = emails[(member["segmentId"], member["userId"])]
        assert member["email"] == hashlib.md5(plain.encode()).hexdigest()


def units_accounted(state: dict) -> set[tuple]:
    """What a STATE says was emitted in full: Indicative segments exported, Acoustic files
    read, Kissmetrics report windows run."""
    bookmarks = state.get("bookmarks", {})
    units: set[tuple] = set()
    for segment in bookmarks.get("indicative_segment_exports", {}).get("segments_exported", {}):
        units |= {(MEMBERS, segment), ("indicative_segment_exports", segment)}
    for job, names in bookmarks.get("acoustic_segment_data", {}).get("files_done", {}).items():
        units |= {("acoustic_segment_data", job, name) for name in names}
    windows = bookmarks.get("kissmetrics_report_results", {}).get("report_windows", {})
    for report, entry in windows.items():
        through = dt.datetime.fromisoformat(entry["done_through"])
        units.add(("kissmetrics_report_results", report, "through", through))
        units |= {
            ("kissmetrics_report_results", report, dt.datetime.fromisoformat(start))
            for start in entry.get("done_ahead", {})
        }
    return units


def unit_of(stream: str, row: dict) -> tuple | None:
    """The unit of ``units_accounted`` a record belongs to."""
    if stream in (MEMBERS, "indicative_segment_exports"):
        return (stream, row["segmentId"])
    if stream == "acoustic_segment_data":
        return (stream, str(row["jobId"]), row["file_name"])
    if stream == "kissmetrics_report_results":
        return (stream, row["report_id"], dt.datetime.fromisoformat(row["window_start"]))
    return None


def test_no_state_accounts_for_records_not_yet_in_a_batch_file(tmp_path):
    """At every STATE of a batched run (small batches, so files split exports), each export,
    file and report window the state records as emitted has all its rows in earlier BATCH
    files: a target that commits up to that STATE has them."""
    with Simulator(sim_config()) as sim:
        batches = batch_config(tmp_path / "b", batch_size=7)
        out = run_cli(tmp_path, tap_config(sim, batch_config=batches))
    assert out.returncode == 0, out.stderr[-2000:]
    final: dict[tuple, int] = {}
    for stream, rows in batch_records(out).items():
        for unit in filter(None, (unit_of(stream, row) for row in rows)):
            final[unit] = final.get(unit, 0) + 1
    assert len(final) > 10
    delivered: dict[tuple, int] = {}
    checked = 0
    for message in out.messages:
        if message["type"] == "BATCH":
            rows = batch_records(SyncOutput([message]))[message["stream"]]
            for unit in filter(None, (unit_of(message["stream"], row) for row in rows)):
                delivered[unit] = delivered.get(unit, 0) + 1
        elif message["type"] == "STATE":
            for unit in units_accounted(message["value"]):
                if unit[2:3] == ("through",):  # every window that started before then
                    stream, report, _, through = unit
                    done = [u for u in final if u[:2] == (stream, report) and u[2] < through]
                else:
                    done = [unit]
                for each in done:
                    assert delivered.get(each, 0) == final.get(each, 0), (each, message)
                    checked += 1
    assert checked > 100


def test_a_batched_run_killed_at_any_state_and_resumed_loses_nothing(tmp_path):
    """A target commits the BATCH files it read before a STATE; small batches split exports."""
    with Simulator(sim_config()) as sim:

        def config() -> dict[str, t.Any]:
            batches = batch_config(tmp_path / "b", batch_size=7)
            return tap_config(sim, start_date=START, batch_config=batches)

        reference = run_cli(tmp_path, config())
        assert reference.returncode == 0, reference.stderr[-2000:]
        expected = keys(batch_records(reference))
        states = len(reference.states)
        problems = []
        for point in range(1, KILL_POINTS + 1):
            index = max(1, point * states // (KILL_POINTS + 1))

            def at_point(_state: dict, index: int = index, seen: list = []) -> bool:  # noqa: B006
                seen.append(1)
                return len(seen) == index

            state, before_kill = kill_run(tmp_path, config(), at_point)
            resumed = run_cli(tmp_path, config(), state)
            if resumed.returncode != 0:
                problems.append(f"point {point}: resume failed: {resumed.stderr[-500:]}")
                continue
            lost = expected - keys(batch_records(before_kill)) - keys(batch_records(resumed))
            if lost:
                problems.append(f"point {point} (STATE {index}): lost {sorted(lost)[:3]}")
    assert not problems, problems


def keys(records: dict[str, list[dict]]) -> set[tuple]:
    return {
        (stream, *(row[k] for k in STABLE_KEYS[stream]))
        for stream, rows in records.items()
        for row in rows
    }


@pytest.mark.parametrize("batch_size", [1, 10_000])
def test_batch_size_cuts_files(tmp_path, batch_size):
    with Simulator(sim_config()) as sim:
        config = tap_config(sim, batch_config=batch_config(tmp_path / "b", batch_size))
        config = {k: v for k, v in config.items() if not k.startswith(("artisan", "kiss", "acou"))}
        out = run_cli(tmp_path, config)
        truth = sim.truth()
    assert out.returncode == 0, out.stderr[-2000:]
    batches = [m for m in out.messages if m["type"] == "BATCH" and m["stream"] == MEMBERS]
    files = batch_records(out)
    assert len(files[MEMBERS]) == truth[MEMBERS]
    if batch_size == 1:
        assert len(batches) == truth[MEMBERS]
    else:  # one file per export: each export's rows are one sync of the child stream
        assert len(batches) == truth["indicative_segment_exports"]
    assert out.messages[-1]["type"] == "STATE"
