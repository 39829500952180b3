"""Structured JSON logs through the SDK's SINGER_SDK_LOG_CONFIG, as Meltano 4 sets them up.

Meltano 4 runs a plugin that advertises the ``structured-logging`` capability with
``SINGER_SDK_LOG_CONFIG`` naming a logging config whose root handler formats every record
with ``singer_sdk.logging.StructuredFormatter``: one JSON object a line, the record's
``extra`` attributes under ``"extra"`` (``stream_name`` lifted to the top level).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from singer_output import CLI_RUNS, REPO, cli_command, write_json

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig

pytestmark = pytest.mark.e2e

#: The logging config Meltano 4.4.1 writes for such a plugin (meltano/core/plugin/singer/base.py).
STRUCTURED_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "singer_sdk.logging.StructuredFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["console"], "level": "INFO"},
}


@pytest.fixture(scope="module")
def structured_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """An Indicative sync of two segments with structured logs: (simulator, log lines)."""
    tmp_path = tmp_path_factory.mktemp("structured")
    with Simulator(SimConfig(seed=2, indicative=IndicativeConfig(segments=2))) as sim:
        config = {k: v for k, v in sim.tap_config().items() if k.startswith("indicative")}
        config.update(export_poll_interval_seconds=0.02)
        command, env = cli_command(tmp_path, config, None)
        env["SINGER_SDK_LOG_CONFIG"] = str(
            write_json(tmp_path / "logging.json", STRUCTURED_LOG_CONFIG)
        )
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=REPO, timeout=300
        )
    CLI_RUNS.append((config, done.stdout + done.stderr))
    assert done.returncode == 0, done.stderr[-2000:]
    return sim, [line for line in done.stderr.splitlines() if line.strip()]


def test_every_log_line_is_a_json_object(structured_run):
    _, lines = structured_run
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"level", "logger_name", "message", "extra"} <= entry.keys(), line


def test_each_export_progress_line_carries_its_fields(structured_run):
    """Every line about one export names it (vendor, stream, export_key, job_id, status);
    the rows read from its files come as ``rows``, and how long it took as ``seconds``."""
    sim, lines = structured_run
    entries = [json.loads(line) for line in lines]
    for index, segment in enumerate(sim.indicative.segments):
        export = [e for e in entries if e["extra"].get("export_key") == str(segment["segmentId"])]
        assert export, f"no log line names export_key {segment['segmentId']}"
        for entry in export:
            assert entry["extra"]["vendor"] == "indicative", entry
            assert (entry["stream_name"] or "").startswith("indicative_"), entry
            assert isinstance(entry["extra"]["status"], str), entry
        assert len({e["extra"]["job_id"] for e in export}) == 1, "one job per export"
        assert "PENDING" in {e["extra"]["status"] for e in export}  # the vendor's own word
        rows = [e["extra"]["rows"] for e in export if "rows" in e["extra"]]
        assert rows and max(rows) == sim.indicative.rows_of(index), rows
        seconds = [e["extra"]["seconds"] for e in export if "seconds" in e["extra"]]
        assert seconds and all(isinstance(s, (int, float)) and s >= 0 for s in seconds)
