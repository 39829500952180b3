"""Bad input and hard stops, through the CLI against the simulator (issue 13's categories).

Each case switches one bad input on (a file, an answer, a state, a setting, a signal, a
target that stops reading) and checks what a careful data engineer expects: valid files
always load, no value is silently lost or put under another column, every wait is bounded,
a state the tap did not write is one clear line (or a warning when the bad part can be
ignored), and every run that fails ends with one line naming the vendor and what failed,
never a traceback. ``FIGURES`` counts them for the closing summary.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import typing as t

import pytest
from reliability_figures import FIGURES
from singer_output import CLI_RUNS, SyncOutput, cli_command, parse_lines, run_cli

from simulator import SimConfig, Simulator
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.badfiles import big_cell_value
from simulator.indicative import IndicativeConfig

pytestmark = pytest.mark.e2e
ROWS = 60


def small_sim(**indicative: t.Any) -> Simulator:
    return Simulator(
        SimConfig(
            seed=51,
            indicative=IndicativeConfig(segments=2, rows_per_segment=ROWS, **indicative),
            artisan=ArtisanConfig(apps=1, segments_per_app=3, members_per_segment=30),
            acoustic=AcousticConfig(jobs_per_category=4, rows_per_file=(20, 40)),
        )
    )


def config(sim: Simulator, *vendors: str, **extra: t.Any) -> dict:
    return {
        **sim.tap_config(),
        "vendors": list(vendors),
        "export_poll_interval_seconds": 0.1,
        "export_poll_max_interval_seconds": 0.2,
        "http_retry_base_seconds": 0.05,
        **extra,
    }


class tried:
    """Counts one fault tried, and held when the block passes; a traceback is counted too."""

    def __enter__(self) -> None:
        FIGURES["faults_tried"] += 1

    def __exit__(self, kind: type | None, *_: object) -> None:
        if kind is None:
            FIGURES["faults_held"] += 1


def loaded(out: SyncOutput, sim: Simulator, *streams: str) -> None:
    """Exit 0 and every row the simulator served; a short count with exit 0 is a silent loss."""
    assert out.returncode == 0, out.stderr[-3000:]
    truth = sim.truth()
    for stream in streams:
        if out.count(stream) < truth[stream]:
            FIGURES["silent_losses"] += 1
        assert out.count(stream) == truth[stream], stream


def one_line(out: SyncOutput, *words: str) -> str:
    assert out.returncode != 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "ERROR" in last, last
    for word in words:
        assert word in last, f"{word!r} not in {last!r}"
    return last


def member_rows(sim: Simulator) -> dict[tuple[str, int], dict]:
    """The rows the simulator's Indicative exports hold, by (segmentId, row_number)."""
    return {
        (segment["segmentId"], number): row
        for segment in sim.indicative.segments
        for number, row in enumerate(sim.indicative.member_rows(segment["segmentId"]), 1)
    }


# -- 1. valid files always load -------------------------------------------------------------


def test_a_cell_over_128_kib_loads_whole(tmp_path):
    with tried(), small_sim() as sim:
        sim.faults.add("big_cell", vendor="indicative", path="^/files/", size=300_000, times=9)
        out = run_cli(tmp_path, config(sim, "indicative"))
        loaded(out, sim, "indicative_segment_members")
        firsts = [r for r in out.records["indicative_segment_members"] if r["row_number"] == 1]
        assert {r["userId"] for r in firsts} == {big_cell_value(300_000)}


@pytest.mark.parametrize("vendor", ["indicative", "artisan"])  # CSV files, and JSON files
def test_a_utf8_bom_before_csv_or_json_loads_the_same_columns(vendor, tmp_path):
    stream = f"{vendor}_segment_members"
    with tried(), small_sim() as sim:
        sim.faults.add("bom", vendor=vendor, path="^/files/", times=20)
        out = run_cli(tmp_path, config(sim, vendor))
        loaded(out, sim, stream)
        columns = set(out.schemas(stream)[-1]["properties"])
        assert not [c for c in columns if c.startswith("\ufeff")]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw"])
def test_every_content_coding_requests_advertises_is_decoded(encoding, tmp_path):
    with tried(), small_sim() as sim:
        sim.faults.add(
            "content_encoding", vendor="indicative", path="^/files/", encoding=encoding, times=9
        )
        out = run_cli(tmp_path, config(sim, "indicative"))
        loaded(out, sim, "indicative_segment_members")
        rows = member_rows(sim)
        for record in out.records["indicative_segment_members"]:
            expected = rows[(record["segmentId"], record["row_number"])]
            assert {k: record[k] for k in expected} == expected


# -- 2. no value silently lost or mis-assigned ----------------------------------------------


def test_duplicate_header_names_keep_every_value_under_its_own_name(tmp_path):
    with tried(), small_sim() as sim:
        sim.faults.add("duplicate_headers", vendor="indicative", path="^/files/", times=9)
        out = run_cli(tmp_path, config(sim, "indicative"))
        loaded(out, sim, "indicative_segment_members")
        rows = member_rows(sim)
        for record in out.records["indicative_segment_members"]:
            served = list(rows[(record["segmentId"], record["row_number"])].values())
            # userId,email,email,email_2,...: the second "email" gets the first free suffix.
            assert (record["email"], record["email_3"], record["email_2"]) == tuple(served[1:4])


def test_an_empty_header_name_gets_a_usable_column(tmp_path):
    with tried(), small_sim() as sim:
        sim.faults.add("empty_header", vendor="indicative", path="^/files/", times=9)
        out = run_cli(tmp_path, config(sim, "indicative"))
        loaded(out, sim, "indicative_segment_members")
        rows = member_rows(sim)
        for record in out.records["indicative_segment_members"]:
            served = list(rows[(record["segmentId"], record["row_number"])].values())
            assert record["column_2"] == served[1]


def test_a_zero_byte_result_file_is_a_warning_naming_export_and_file(tmp_path):
    with tried(), small_sim() as sim:
        # Two requests of one file: the check that it is still there, then its download.
        sim.faults.add("empty_file", vendor="indicative", path="^/files/", times=2)
        out = run_cli(tmp_path, config(sim, "indicative"))
    assert out.returncode == 0, out.stderr[-3000:]
    warnings = [line for line in out.stderr.splitlines() if "is empty (0 bytes)" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert "Indicative export" in warnings[0] and ".csv" in warnings[0]
    assert out.count("indicative_segment_members") == ROWS  # the other export, whole


# -- 3. every wait is bounded ----------------------------------------------------------------


def test_a_trickling_download_is_bounded_by_its_setting(tmp_path):
    with tried(), small_sim() as sim:
        sim.faults.add(
            "trickle",
            vendor="indicative",
            path="^/files/",
            tick_bytes=16,
            tick_seconds=0.2,
            for_seconds=30,
            times=9,
        )
        began = time.monotonic()
        out = run_cli(tmp_path, config(sim, "indicative", file_download_timeout_seconds=2))
        elapsed = time.monotonic() - began
    one_line(out, "Indicative export", "file_download_timeout_seconds=2")
    assert elapsed < 20


def test_retry_after_as_a_date_is_read_against_the_servers_own_clock(tmp_path):
    with tried(), small_sim() as sim:
        # The server's clock is 10 minutes ahead; its Retry-After is 1 s after its own Date.
        sim.faults.add(
            "status",
            vendor="indicative",
            path="/segments/list",
            status=429,
            retry_after_date=1,
            date_skew=600,
            times=2,
        )
        began = time.monotonic()
        out = run_cli(tmp_path, config(sim, "indicative"))
        elapsed = time.monotonic() - began
        loaded(out, sim, "indicative_segment_members")
    assert 2 <= elapsed < 60, elapsed


# -- 4. state the tap did not write ----------------------------------------------------------


def run_with_state_text(tmp_path, settings: dict, text: str) -> SyncOutput:
    state_file = tmp_path / "hand-written-state.json"
    state_file.write_text(text)
    command, env = cli_command(tmp_path, settings, None)
    done = subprocess.run(
        [*command, "--state", str(state_file)], capture_output=True, text=True, env=env, timeout=300
    )
    CLI_RUNS.append((settings, done.stdout + done.stderr))
    return SyncOutput(parse_lines(done.stdout), stderr=done.stderr, returncode=done.returncode)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"bookmarks": {"indicative_segment_exports": ', ("state file", "is not JSON")),
        ("[1, 2]", ("state file", "not an object")),
        ('{"bookmarks": []}', ("'bookmarks'", "not an object")),
        ('{"bookmarks": {"indicative_segment_exports": "x"}}', ("indicative_segment_exports",)),
        (
            '{"bookmarks": {"indicative_segment_exports": {"exports_in_flight": 7}}}',
            ("state of stream indicative_segment_exports", "exports_in_flight"),
        ),
    ],
)
def test_a_state_the_tap_cannot_use_is_one_line_naming_it(text, words, tmp_path):
    with tried(), small_sim() as sim:
        out = run_with_state_text(tmp_path, config(sim, "indicative"), text)
        triggers = sim.indicative.trigger_count()
    one_line(out, *words)
    assert triggers == 0  # stopped before any export was triggered


@pytest.mark.parametrize(
    "entry",
    [{"started_at": "2026-11-01T00:00:00Z"}, {"job_id": "x", "started_at": "last tuesday"}],
    ids=["no job id", "bad timestamp"],
)
def test_a_malformed_export_in_flight_is_ignored_with_a_warning(entry, tmp_path):
    with tried(), small_sim() as sim:
        segment = sim.indicative.segments[0]["segmentId"]
        state = {
            "bookmarks": {"indicative_segment_exports": {"exports_in_flight": {segment: entry}}}
        }
        out = run_with_state_text(tmp_path, config(sim, "indicative"), json.dumps(state))
        loaded(out, sim, "indicative_segment_members")
    warning = next(line for line in out.stderr.splitlines() if "cannot be resumed" in line)
    assert "WARNING" in warning and segment in warning


# -- 5. every value the settings schema accepts works ------------------------------------------


def test_a_fractional_request_timeout_works(tmp_path):
    with tried(), small_sim() as sim:
        out = run_cli(tmp_path, config(sim, "indicative", request_timeout_seconds=0.5))
        loaded(out, sim, "indicative_segment_members")


def test_a_poll_interval_of_zero_is_raised_to_the_floor(tmp_path):
    with tried(), small_sim(export_seconds=2.0) as sim:
        settings = config(
            sim,
            "indicative",
            export_poll_interval_seconds=0,
            export_poll_max_interval_seconds=0,
        )
        out = run_cli(tmp_path, settings)
        loaded(out, sim, "indicative_segment_members")
        polls = sim.indicative.poll_count()
    # 2 s of export at one poll per 0.1 s (the floor) at most: two exports, ~20 polls each.
    assert polls <= 2 * (2.0 / 0.1 + 5), polls


# -- 6. signals and a dying target --------------------------------------------------------------


def start(tmp_path, settings: dict, state: dict | None = None) -> subprocess.Popen:
    command, env = cli_command(tmp_path, settings, state)
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def read_until(process: subprocess.Popen, predicate: t.Callable[[dict], bool]) -> list[dict]:
    """Messages printed until one satisfies ``predicate`` (that one included)."""
    printed = []
    assert process.stdout is not None
    for line in process.stdout:
        message = json.loads(line)
        printed.append(message)
        if predicate(message):
            return printed
    raise AssertionError("the run ended first")


def finish(process: subprocess.Popen, settings: dict, printed: list[dict]) -> SyncOutput:
    out, err = process.communicate(timeout=120)
    CLI_RUNS.append((settings, out + err))
    return SyncOutput(printed + parse_lines(out), stderr=err, returncode=process.returncode)


def in_flight(state: dict) -> dict:
    return state["bookmarks"].get("indicative_segment_exports", {}).get("exports_in_flight", {})


def states(messages: list[dict]) -> list[dict]:
    return [m["value"] for m in messages if m["type"] == "STATE"]


def test_sigterm_while_exports_poll_exits_nonzero_and_resumes_without_a_second_trigger(tmp_path):
    with tried(), small_sim(polls_to_complete=50) as sim:
        settings = config(sim, "indicative")
        process = start(tmp_path, settings)
        printed = read_until(
            process, lambda m: m["type"] == "STATE" and len(in_flight(m["value"])) == 2
        )
        process.send_signal(signal.SIGTERM)
        out = finish(process, settings, printed)
        assert out.returncode == 128 + signal.SIGTERM
        one_line(out, "SIGTERM", "last STATE")
        before = sim.indicative.trigger_counts()
        sim.indicative.polls_to_complete = 2
        again = run_cli(tmp_path, settings, states(out.messages)[-1])
        assert sim.indicative.trigger_counts() == before
        loaded(again, sim, "indicative_segment_members")


def test_sigterm_while_a_trigger_is_in_flight_records_its_job(tmp_path):
    with tried(), small_sim(polls_to_complete=50) as sim:
        sim.faults.add("delay", vendor="indicative", method="POST", seconds=3, times=9)
        settings = config(sim, "indicative", max_concurrent_exports=1)
        process = start(tmp_path, settings)
        # The exports stream's first SCHEMA: its first trigger is about to be sent.
        printed = read_until(
            process,
            lambda m: m["type"] == "SCHEMA" and m["stream"] == "indicative_segment_exports",
        )
        time.sleep(1.0)  # the trigger is now waiting on the server's 3 s delay
        process.send_signal(signal.SIGTERM)
        out = finish(process, settings, printed)
        assert out.returncode == 128 + signal.SIGTERM, out.stderr[-2000:]
        triggered = {k for k, n in sim.indicative.trigger_counts().items() if n}
        assert triggered, "the trigger never reached the vendor"
        last = states(out.messages)[-1]
        assert set(in_flight(last)) == triggered  # the job the vendor started is in the state
        sim.indicative.polls_to_complete = 2
        sim.faults.clear()
        before = sim.indicative.trigger_counts()
        again = run_cli(tmp_path, settings, last)
        after = sim.indicative.trigger_counts()
        assert all(after[k] == before[k] for k in triggered), "triggered a second time"
        loaded(again, sim, "indicative_segment_members")


def test_a_target_that_stops_reading_ends_the_run_promptly_with_one_line(tmp_path):
    with tried(), small_sim() as sim:
        sim.indicative.config.rows_per_segment = 200_000
        settings = config(sim, "indicative")
        process = start(tmp_path, settings)
        read_until(process, lambda m: m["type"] == "RECORD")
        assert process.stdout is not None
        process.stdout.close()  # the target dies
        began = time.monotonic()
        _, err = process.communicate(timeout=60)
        CLI_RUNS.append((settings, err))
        assert time.monotonic() - began < 30
    assert process.returncode != 0
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "target stopped reading" in last, last


def test_no_traceback_in_any_run_of_the_session_so_far():
    """Counted at the end of the session too (conftest): 0 is the promise."""
    FIGURES["tracebacks_seen"] = sum("Traceback (most recent call last)" in o for _, o in CLI_RUNS)
    assert FIGURES["tracebacks_seen"] == 0
