"""A full sync asks each list once and never polls an export it already knows complete.

Read from the simulator's request log (what the vendors received), for a sync of every
stream of every vendor: the clients share one list call per run (Artisan apps and each app's
segments, Indicative segments, Kissmetrics reports, Acoustic jobs per category), and an
export's status is not asked again once it answered complete.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from singer_output import run_cli

from simulator import SimConfig, Simulator
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig

pytestmark = pytest.mark.e2e

LISTS = {
    ("artisan", r"/public/api/apps"),
    ("artisan", r"/public/api/apps/[^/]+/segments/?"),
    ("artisan", r"/public/api/jobs"),
    ("indicative", r"/service/v1/segments/list"),
    ("kissmetrics", r"/core/reports"),
    ("acoustic", r"/v1/jobs/[A-Z_]+"),
    ("acoustic", r"/v1/scheduledjobs/[A-Za-z_]+"),
}


def test_each_list_once_and_no_poll_after_completion(tmp_path):
    config = SimConfig(
        seed=61,
        indicative=IndicativeConfig(segments=3, rows_per_segment=20),
        artisan=ArtisanConfig(apps=2, segments_per_app=2, members_per_segment=10),
        kissmetrics=KissmetricsConfig(reports=2, max_rows_per_window=10),
    )
    with Simulator(config) as sim:
        settings = {**sim.tap_config(), "export_poll_interval_seconds": 0.1}
        out = run_cli(tmp_path, settings)
        log = [e for e in sim.requests if e.method == "GET"]
    assert out.returncode == 0, out.stderr[-2000:]

    calls = Counter(
        (e.vendor, e.path, e.query)
        for e in log
        if any(e.vendor == vendor and re.fullmatch(pattern, e.path) for vendor, pattern in LISTS)
    )
    assert calls, "no list call was logged"
    repeated = {call: n for call, n in calls.items() if n > 1}
    assert not repeated, f"list endpoints asked more than once: {repeated}"

    # Completion is seen on the poll that makes the export complete; none comes after it.
    indicative_polls = sim.indicative.status_polls()
    assert indicative_polls and set(indicative_polls.values()) == {
        config.indicative.polls_to_complete
    }
    artisan_polls = {job: export["polls"] for job, export in sim.artisan.exports.items()}
    assert artisan_polls and set(artisan_polls.values()) == {config.artisan.polls_to_complete}
    kissmetrics = Counter(e.path for e in log if e.path.endswith("/status"))
    assert kissmetrics and set(kissmetrics.values()) == {config.kissmetrics.polls_to_complete}
