"""Run the tap in-process or as a CLI and read its Singer output back, for tests."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import typing as t
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from tap_segments.tap import TapSegments

REPO = Path(__file__).resolve().parents[1]


#: Per stream, the key a row keeps across runs (ids a new export mints left out).
STABLE_KEYS: dict[str, tuple[str, ...]] = {
    "acoustic_jobs": ("jobCategory", "jobId"),
    "acoustic_scheduled_jobs": ("jobId",),
    "acoustic_segment_data": ("jobId", "file_name", "row_number"),
    "artisan_apps": ("id",),
    "artisan_segments": ("app_id", "id"),
    "artisan_jobs": ("id",),
    "artisan_profiles": ("app_id", "identifier"),
    "artisan_segment_members": ("app_id", "segment_id", "row_number"),
    "indicative_segments": ("segmentId",),
    "indicative_segment_exports": ("segmentId",),
    "indicative_segment_members": ("segmentId", "row_number"),
    "kissmetrics_reports": ("id",),
    "kissmetrics_report_results": ("report_id", "window_start", "row_number"),
}


class CliRuns(list):
    """(settings, output) of every CLI run; ``tests`` names the test that made each."""

    def __init__(self) -> None:
        super().__init__()
        self.tests: list[str] = []

    def append(self, run: tuple[dict, str]) -> None:
        self.tests.append(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])
        super().append(run)


#: Every CLI run of the test session, with its config: the session-wide secrets check reads it.
CLI_RUNS: CliRuns = CliRuns()


@dataclass
class SyncOutput:
    """Messages a run printed, grouped the way tests ask about them."""

    messages: list[dict] = field(default_factory=list)
    stderr: str = ""
    stdout: str = ""
    returncode: int = 0

    @property
    def records(self) -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for message in self.messages:
            if message["type"] == "RECORD":
                grouped.setdefault(message["stream"], []).append(message["record"])
        return grouped

    def count(self, stream: str) -> int:
        return len(self.records.get(stream, []))

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict | None:
        return self.states[-1] if self.states else None

    def assert_columns_announced(self) -> None:
        """Every record's keys were in the latest SCHEMA of its stream when it was written."""
        properties: dict[str, set[str]] = {}
        for message in self.messages:
            if message["type"] == "SCHEMA":
                properties[message["stream"]] = set(message["schema"]["properties"])
            elif message["type"] == "RECORD":
                unknown = set(message["record"]) - properties[message["stream"]]
                assert not unknown, f"{message['stream']}: {unknown} not announced"

    def schemas(self, stream: str) -> list[dict]:
        return [
            m["schema"] for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream
        ]


def parse_lines(text: str) -> list[dict]:
    """Singer messages, one JSON object a line (other output, e.g. ``--about``, gives [])."""
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return []


def run_in_process(
    config: dict, state: dict | None = None, catalog: dict | None = None
) -> SyncOutput:
    tap = TapSegments(config=config, state=state, catalog=catalog, validate_config=True)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        tap.sync_all()
    return SyncOutput(parse_lines(buffer.getvalue()))


def write_json(path: Path, value: t.Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def cli_command(
    tmp_path: Path,
    config: dict,
    state: dict | None,
    *args: str,
    env: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment (``env`` added) of a CLI run with this config and
    state."""
    command = [sys.executable, "-m", "tap_segments"]
    command += ["--config", str(write_json(tmp_path / "config.json", config))]
    if state is not None:
        command += ["--state", str(write_json(tmp_path / "state.json", state))]
    path = str(REPO)
    if os.environ.get("TAP_SEGMENTS_TEST_DATE"):  # the suite's clock (tests/clock)
        path = os.pathsep.join([str(REPO / "tests" / "clock"), path])
    return [*command, *args], {**os.environ, "PYTHONPATH": path, **(env or {})}


def run_cli(
    tmp_path: Path,
    config: dict,
    state: dict | None = None,
    *args: str,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> SyncOutput:
    """Run ``python -m tap_segments`` as a data engineer would, and parse what it printed."""
    command, env = cli_command(tmp_path, config, state, *args, env=env)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )
    CLI_RUNS.append((config, done.stdout + done.stderr))
    return SyncOutput(
        parse_lines(done.stdout), stderr=done.stderr, stdout=done.stdout, returncode=done.returncode
    )


def kill_when(
    tmp_path: Path,
    config: dict,
    predicate: t.Callable[[dict], bool],
    state: dict | None = None,
    *,
    timeout: float = 60,
) -> dict:
    """Run the CLI, ``kill -9`` it as soon as a STATE satisfies ``predicate``; return that STATE."""
    return kill_run(tmp_path, config, predicate, state, timeout=timeout)[0]


def kill_run(
    tmp_path: Path,
    config: dict,
    predicate: t.Callable[[dict], bool],
    state: dict | None = None,
    *,
    timeout: float = 60,
) -> tuple[dict, SyncOutput]:
    """``kill_when``, also returning what the run printed up to that STATE (a target would
    have committed exactly that much)."""
    command, env = cli_command(tmp_path, config, state)
    stderr = tmp_path / "killed-run.stderr"
    with stderr.open("w") as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env, cwd=REPO
        )
        deadline = time.monotonic() + timeout
        printed: list[dict] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                message = json.loads(line)
                printed.append(message)
                if message["type"] == "STATE" and predicate(message["value"]):
                    return t.cast(dict, message["value"]), SyncOutput(printed)
                if time.monotonic() > deadline:
                    break
            raise AssertionError("the run ended before a STATE matched")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
            CLI_RUNS.append((config, json.dumps(printed) + stderr.read_text()))
