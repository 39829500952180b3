"""Shared pytest configuration."""

from __future__ import annotations

import json
import os
import re
import typing as t
from pathlib import Path

import pytest

#: Streams whose columns come from the export files themselves: unknown at discovery, they
#: are announced by a SCHEMA message before the first record carrying them (checked by
#: ``singer_output.assert_columns_announced`` in the end-to-end tests instead).
FILE_ROW_STREAMS = (
    "indicative_segment_members",
    "artisan_segment_members",
    "artisan_profiles",
    "acoustic_segment_data",
)
DISCOVERY_ONLY_CHECK = "test_tap_stream_record_schema_matches_transformed_catalog"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.name.startswith(DISCOVERY_ONLY_CHECK) and any(
            f"[{stream}]" in item.name for stream in FILE_ROW_STREAMS
        ):
            item.add_marker(
                pytest.mark.skip(
                    reason="file-row columns are announced at run time, not at discovery"
                )
            )


# -- the clock: TAP_SEGMENTS_TEST_DATE runs the whole suite on another date --------------------

CLOCK_DIR = Path(__file__).resolve().parent / "clock"


def pytest_configure(config: pytest.Config) -> None:
    """With ``TAP_SEGMENTS_TEST_DATE`` (e.g. ``2027-08-14``) this process and every CLI run
    (through ``tests/clock/sitecustomize.py``) see that date, the clock ticking from there."""
    date = os.environ.get("TAP_SEGMENTS_TEST_DATE")
    if date:
        import time_machine

        time_machine.travel(date, tick=True).start()
        config._tap_segments_date = date  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str | None:
    date = getattr(config, "_tap_segments_date", None)
    return f"tap-segments: the clock runs from {date} (TAP_SEGMENTS_TEST_DATE)" if date else None


# -- session-wide promises: secrets never shown, read-only by default ----------------------

#: Requests other than GET that a tap may send: the documented export triggers and runs, and
#: Acoustic's mark-complete (sent only with acoustic_mark_complete: tests/acoustic prove it).
ALLOWED_WRITES = (
    ("POST", re.compile(r"^/service/v1/segments/export/?$")),  # Indicative export
    ("POST", re.compile(r"^/public/api/apps/[^/]+/segments/[^/]+$")),  # Artisan segment export
    ("POST", re.compile(r"^/public/api/apps/[^/]+/users/export$")),  # Artisan profile export
    ("POST", re.compile(r"^/v2/products/[^/]+/reports/[^/]+/run$")),  # Kissmetrics run
    ("POST", re.compile(r"^/query/reports/[^/]+/run$")),  # Kissmetrics run, the core-host link
    ("PUT", re.compile(r"^/v1/jobs/\d+/status/complete$")),  # Acoustic, opt-in
)
SIMULATOR_LOGS: list[list] = []
TRACEBACK = "Traceback (most recent call last)"
#: Per simulator of a tap test: (test id, storage requests, those that carried a credential).
#: The simulator's own tests (tests/simulator) send credentials to storage on purpose.
STORAGE_FINDINGS: list[tuple[str, int, list]] = []


@pytest.fixture(autouse=True, scope="session")
def _collect_simulator_logs():
    from simulator import Simulator

    original_stop = Simulator.stop

    def stop(self: Simulator) -> None:
        SIMULATOR_LOGS.append(self.requests)
        test = os.environ.get("PYTEST_CURRENT_TEST", "session").split(" ")[0]
        if not test.startswith("tests/simulator/"):
            leaks = [leak.to_dict() for leak in self.storage.credential_leaks()]
            STORAGE_FINDINGS.append((test, len(self.storage.requests), leaks))
        original_stop(self)

    Simulator.stop = stop  # type: ignore[method-assign]
    yield
    Simulator.stop = original_stop  # type: ignore[method-assign]


def session_findings() -> dict[str, t.Any]:
    """Credentials seen in any CLI run's output (in any form), writes no setting allowed, and
    credentials that reached the result-file storage."""
    from singer_output import CLI_RUNS

    from simulator.storage import secret_forms
    from tap_segments.tap import TapSegments

    secrets_seen = []
    for config, output in CLI_RUNS:
        secrets = [str(config[n]) for n in TapSegments.secret_names() if config.get(n)]
        for form, what in secret_forms(secrets).items():  # raw, encoded, base64, Basic pairs
            if form in output:
                secrets_seen.append(what)
    requests = [entry for log in SIMULATOR_LOGS for entry in log]
    writes = [e for e in requests if e.method not in ("GET", "HEAD")]
    forbidden = [
        f"{e.method} {e.path}"
        for e in writes
        if not any(e.method == m and p.match(e.path) for m, p in ALLOWED_WRITES)
    ]
    traceback_runs = [  # the test, and the output's last lines from the traceback on
        (test, out[out.index(TRACEBACK) :][-1500:])
        for test, (_, out) in zip(CLI_RUNS.tests, CLI_RUNS, strict=True)
        if TRACEBACK in out
    ]
    return {
        "tracebacks": len(traceback_runs),
        "traceback_runs": traceback_runs,
        "cli_runs": len(CLI_RUNS),
        "simulator_requests": len(requests),
        "writes": len(writes),
        "secrets_seen": secrets_seen,
        "forbidden_writes": forbidden,
        "storage_requests": sum(count for _, count, _ in STORAGE_FINDINGS),
        "storage_leaks": [(test, leak) for test, _, leaks in STORAGE_FINDINGS for leak in leaks],
    }


#: What each pytest-xdist worker found (``scripts/test.sh`` runs the suite on every core).
WORKER_FINDINGS: list[dict[str, t.Any]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: t.Any, error: t.Any) -> None:
    """The controller gathers each worker's findings and figures as the worker ends."""
    found = getattr(node, "workeroutput", {}).get("tap_segments")
    if found:
        WORKER_FINDINGS.append(json.loads(found))


def merged(parts: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """Findings (or figures) of several processes as one: counts added, lists joined."""
    total: dict[str, t.Any] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total[key] + value if key in total else value
    return total


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from reliability_figures import FIGURES

    findings = session_findings()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller adds up and judges
        workeroutput["tap_segments"] = json.dumps({"findings": findings, "figures": FIGURES})
        return
    findings = merged([findings, *(each["findings"] for each in WORKER_FINDINGS)])
    FIGURES.update(merged([FIGURES, *(each["figures"] for each in WORKER_FINDINGS)]))
    session.config._tap_segments_findings = findings  # type: ignore[attr-defined]
    if (
        findings["secrets_seen"]
        or findings["forbidden_writes"]
        or findings["storage_leaks"]
        or findings["tracebacks"]
    ):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    from reliability_figures import FIGURES

    findings = getattr(terminalreporter.config, "_tap_segments_findings", None)
    if findings is None:
        return

    terminalreporter.section("tap-segments promises")
    terminalreporter.write_line(
        f"CLI runs checked: {findings['cli_runs']}; secrets seen: {len(findings['secrets_seen'])}"
        f"; simulator requests: {findings['simulator_requests']}, of which writes: "
        f"{findings['writes']}, not allowed: {len(findings['forbidden_writes'])}"
        + (f" {findings['forbidden_writes'][:5]}" if findings["forbidden_writes"] else "")
    )
    leaks = findings["storage_leaks"]
    terminalreporter.write_line(
        f"result-file storage: {findings['storage_requests']} requests received, credential "
        f"headers or values seen there: {len(leaks)}"
        + (f" (first: {leaks[0][0]}: {leaks[0][1]['reasons']})" if leaks else "")
    )
    FIGURES["tracebacks_seen"] = findings["tracebacks"]
    terminalreporter.write_line(
        f"tracebacks in CLI output: {findings['tracebacks']} of {findings['cli_runs']} runs"
    )
    for test, tail in findings["traceback_runs"][:3]:
        terminalreporter.write_line(f"traceback in a CLI run of {test}:\n{tail}")
    if FIGURES["faults_tried"]:
        terminalreporter.write_line(
            "reliability: " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in FIGURES.items())
        )
