"""A long run's progress can be followed in the logs: each export from trigger to rows."""

from __future__ import annotations

import re

from singer_output import run_cli

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig


def test_each_export_logs_trigger_status_progress_rows_and_time(tmp_path):
    with Simulator(SimConfig(seed=2, indicative=IndicativeConfig(segments=2))) as sim:
        config = {k: v for k, v in sim.tap_config().items() if k.startswith(("indicative", "kiss"))}
        config.update(export_poll_interval_seconds=0.02)
        out = run_cli(tmp_path, config)
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stderr
    for segment in sim.indicative.segments:
        segment_id = segment["segmentId"]
        assert re.search(rf"Indicative export \S+ triggered for {segment_id}\.", log)
        export = rf"Indicative export \S+ for {segment_id}"
        assert re.search(rf"{export}: PENDING", log)  # the vendor's own status word
        assert re.search(rf"{export} is complete \(1 file\(s\)\) after \d+ s", log)
        assert re.search(rf"{export}: 1 record\(s\) emitted in [\d.]+ s", log)
    assert re.search(r"indicative_segment_members: \d+ row\(s\) read so far", log)
    assert re.search(r"Kissmetrics export \S+ for \S+: running \(\d+%\)", log)  # its progress
