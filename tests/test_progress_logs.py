"""A long run's progress can be followed in the logs: each export from trigger to rows.

For every export of a CLI run (all four vendors), stderr says when it was triggered (vendor,
key, job id), each change of its status with the vendor's progress where it reports one
(Kissmetrics gives a percentage), that it completed, and how many rows it emitted in how
long; Acoustic's jobs, which the tap does not trigger, say the same once their files are
read.
"""

from __future__ import annotations

import re

from singer_output import run_cli

from simulator import SimConfig, Simulator
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig

TRIGGERED = re.compile(r"(\w[\w ]*?) export (\S+) triggered for (\S+)\.")


def test_each_export_logs_trigger_status_progress_rows_and_time(tmp_path):
    config = SimConfig(
        seed=2,
        indicative=IndicativeConfig(segments=2, rows_per_segment=30),
        artisan=ArtisanConfig(apps=1, segments_per_app=2, members_per_segment=20),
        kissmetrics=KissmetricsConfig(reports=1, max_rows_per_window=30),
        acoustic=AcousticConfig(jobs_per_category=2, rows_per_file=(5, 15)),
    )
    with Simulator(config) as sim:
        settings = {**sim.tap_config(), "export_poll_interval_seconds": 0.02}
        out = run_cli(tmp_path, settings)
        acoustic_jobs = [
            str(job["jobId"])
            for job in sim.acoustic.jobs
            if job.get("jobCategory") == "SEGMENT_EXPORT"
            and job.get("status") == "READY_FOR_DOWNLOAD"
        ]
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stderr

    triggered = TRIGGERED.findall(log)
    vendors = {vendor for vendor, _, _ in triggered}
    assert vendors == {"Artisan", "Indicative", "Kissmetrics"}, vendors
    for vendor, job, key in triggered:
        export = rf"{vendor} export {re.escape(job)} for {re.escape(key)}"
        assert re.search(rf"{export}: \w", log), f"no status line for {export}"
        assert re.search(rf"{export} is complete \(\d+ file\(s\)\) after \d+ s\.", log)
        emitted = rf"{export}: (\d+) record\(s\) emitted in [\d.]+ s; \d+ s since it was triggered"
        assert re.search(emitted, log), f"no completion line for {export}"

    # The vendors' own status words and progress.
    assert re.search(r"Indicative export \S+ for \S+: PENDING", log)
    assert re.search(r"Kissmetrics export \S+ for \S+: running \(\d+%\)", log)
    # Indicative's rows come out in the child stream: its line names the export.
    for segment in sim.indicative.segments:
        segment_id = segment["segmentId"]
        rows = len(sim.indicative.member_rows(segment_id))
        assert re.search(
            rf"indicative_segment_members: {rows} row\(s\) of Indicative export \S+ for "
            rf"{segment_id} emitted in [\d.]+ s\.",
            log,
        ), segment_id
    # Acoustic jobs are read, not triggered: one line per job once its files are emitted.
    assert acoustic_jobs
    for job in acoustic_jobs:
        line = (
            rf"Acoustic Exchange job {job}: \d+ record\(s\) of \d+ file\(s\) emitted in [\d.]+ s\."
        )
        assert re.search(line, log), job
