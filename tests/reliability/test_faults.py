"""Fault injection, for every vendor: the sync completes exactly, or fails with one clear line.

Each case switches a simulator fault on for one vendor's endpoint and runs the CLI against
that vendor only. "Recoverable" faults (429 storms with Retry-After, 5xx bursts, resets,
slow answers past the request timeout, downloads cut off mid-file, plain and gzip) must end
with exit 0 and exactly the simulator's records, no key twice. "Fatal" ones (errors that
outlast the retries, HTML pages, truncated JSON, unknown status words, FAILED exports, a
status answer without Location) must end with exit 1, one ERROR line naming the vendor and
what failed, and no traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from reliability_figures import FIGURES
from singer_output import SyncOutput, run_cli

from simulator import SimConfig, Simulator
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig

#: Per vendor: a list endpoint read first, the endpoint polled for exports, the file download.
ENDPOINTS = {
    "indicative": {
        "list": r"^/service/v1/segments/list$",
        "status": r"^/service/v1/segments/export/.+",
        "file": r"^/files/",
    },
    "artisan": {
        "list": r"^/public/api/apps$",
        "status": r"^/public/api/jobs/[^/]+$",
        "file": r"^/files/",
    },
    "kissmetrics": {
        "list": r"^/core/reports$",
        "status": r"^/v2/queries/[^/]+/status$",
        "file": r"^/v2/queries/[^/]+/results$",
    },
    "acoustic": {
        "list": r"^/v1/scheduledjobs/",
        "status": r"^/v1/jobs/SEGMENT_EXPORT$",
        "file": r"/segmentDataFiles/",
    },
}
#: Primary keys, less the ids a new export mints (so two runs' rows compare).
ROW_KEYS = {
    "indicative_segment_members": ("segmentId", "row_number"),
    "artisan_segment_members": ("app_id", "segment_id", "row_number"),
    "artisan_profiles": ("app_id", "identifier"),
    "kissmetrics_report_results": ("report_id", "window_start", "row_number"),
    "acoustic_segment_data": ("jobId", "file_name", "row_number"),
}
LABELS = {
    "indicative": "Indicative",
    "artisan": "Artisan",
    "kissmetrics": "Kissmetrics",
    "acoustic": "Acoustic Exchange",
}


def small_sim(gzip: bool = False) -> Simulator:
    return Simulator(
        SimConfig(
            seed=31,
            indicative=IndicativeConfig(segments=3, rows_per_segment=2500, gzip=gzip),
            artisan=ArtisanConfig(apps=1, segments_per_app=2, members_per_segment=400, gzip=gzip),
            kissmetrics=KissmetricsConfig(reports=1, max_rows_per_window=120),
            acoustic=AcousticConfig(jobs_per_category=4, rows_per_file=(300, 600), gzip=gzip),
        )
    )


def vendor_config(sim: Simulator, vendor: str, **extra: object) -> dict:
    prefix = vendor if vendor != "kissmetrics" else "kissmetrics_"
    config = {k: v for k, v in sim.tap_config().items() if k.startswith(prefix)}
    return {
        **config,
        "export_poll_interval_seconds": 0.02,
        "export_poll_max_interval_seconds": 0.05,
        "http_retry_base_seconds": 0.05,
        "http_max_tries": 4,
        **extra,
    }


def exact(out: SyncOutput, sim: Simulator, vendor: str) -> None:
    """Exit 0, every stream of the vendor at the simulator's count, no row key twice."""
    assert out.returncode == 0, out.stderr[-3000:]
    truth = {s: n for s, n in sim.truth().items() if s.startswith(vendor)}
    if vendor == "kissmetrics":
        truth["kissmetrics_report_results"] = sim.kissmetrics.expected_rows()
    assert {s: out.count(s) for s in truth} == truth
    for stream, key in ROW_KEYS.items():
        rows = out.records.get(stream, [])
        assert len({tuple(r[k] for k in key) for r in rows}) == len(rows), f"{stream}: a row twice"


def one_clear_line(out: SyncOutput, vendor: str, *words: str) -> None:
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert "ERROR" in last and LABELS[vendor] in last, last
    for word in words:
        assert word in last, f"{word!r} not in {last!r}"


@dataclass
class Case:
    name: str
    kind: str
    endpoint: str
    options: dict = field(default_factory=dict)
    extra_config: dict = field(default_factory=dict)
    gzip: bool = False


RECOVERABLE = [
    Case(
        "429 storm with Retry-After",
        "status",
        "list",
        {"status": 429, "retry_after": "1", "times": 2},
    ),
    Case("5xx burst while polling", "status", "status", {"status": 503, "times": 3}),
    Case("connection reset", "reset", "list", {"times": 1}),
    Case(
        "answer slower than the timeout",
        "delay",
        "list",
        {"seconds": 1.5},
        {"request_timeout_seconds": 1},
    ),
    Case("download cut mid-file", "cut_download", "file", {"after_bytes": 20_000, "times": 2}),
    Case("gzip download cut mid-file", "cut_download", "file", {"after_bytes": 9_000}, gzip=True),
]
FATAL = [
    Case(
        "5xx beyond the retries",
        "status",
        "list",
        {"status": 500, "times": 50},
        {"http_max_tries": 2},
    ),
    Case("HTML error page", "html", "list", {"status": 200}),
    Case("truncated JSON", "truncated_json", "list"),
]


@pytest.mark.parametrize("vendor", list(ENDPOINTS))
@pytest.mark.parametrize("case", RECOVERABLE, ids=lambda c: c.name)
def test_recoverable_fault_completes_exactly(vendor, case, tmp_path):
    FIGURES["faults_tried"] += 1
    with small_sim(gzip=case.gzip) as sim:
        sim.faults.add(
            case.kind, vendor=vendor, path=ENDPOINTS[vendor][case.endpoint], **case.options
        )
        began = time.monotonic()
        out = run_cli(tmp_path, vendor_config(sim, vendor, **case.extra_config))
        elapsed = time.monotonic() - began
        exact(out, sim, vendor)
        assert sim.faults.fired() >= 1, "the fault never fired"
        if case.options.get("retry_after"):
            # Two 429s each asking for 1 s: the run waited at least that, jitter or not.
            assert elapsed >= 2.0
            statuses = [e.status for e in sim.requests if e.vendor == vendor]
            assert statuses.count(429) == 2
    FIGURES["faults_held"] += 1


@pytest.mark.parametrize("vendor", list(ENDPOINTS))
@pytest.mark.parametrize("case", FATAL, ids=lambda c: c.name)
def test_fatal_fault_ends_with_one_clear_line(vendor, case, tmp_path):
    FIGURES["faults_tried"] += 1
    with small_sim() as sim:
        sim.faults.add(
            case.kind, vendor=vendor, path=ENDPOINTS[vendor][case.endpoint], **case.options
        )
        out = run_cli(tmp_path, vendor_config(sim, vendor, **case.extra_config))
    one_clear_line(out, vendor)
    FIGURES["faults_held"] += 1


UNKNOWN_STATUS_BODIES = {
    "indicative": '{"exportId": "x", "status": "SIDEWAYS", "filename": null}',
    "artisan": '{"_id": "x", "status": "SIDEWAYS"}',
}


@pytest.mark.parametrize("vendor", list(UNKNOWN_STATUS_BODIES))
def test_unknown_status_word_is_an_error_naming_it(vendor, tmp_path):
    FIGURES["faults_tried"] += 1
    with small_sim() as sim:
        sim.faults.add(
            "status",
            vendor=vendor,
            path=ENDPOINTS[vendor]["status"],
            status=200,
            body=UNKNOWN_STATUS_BODIES[vendor],
            times=100,
        )
        out = run_cli(tmp_path, vendor_config(sim, vendor))
    one_clear_line(out, vendor, "SIDEWAYS")
    FIGURES["faults_held"] += 1


def test_failed_exports_are_named_and_the_others_still_load(tmp_path):
    FIGURES["faults_tried"] += 2
    with small_sim() as sim:
        sim.indicative.config.fail_segments = {0}
        sim.artisan.config.fail_segments = (0,)
        indicative = run_cli(tmp_path, vendor_config(sim, "indicative"))
        artisan = run_cli(tmp_path, vendor_config(sim, "artisan"))
        failed_segment = sim.indicative.segments[0]["segmentId"]
    one_clear_line(indicative, "indicative", "FAILED", failed_segment)
    rows = indicative.records["indicative_segment_members"]
    assert failed_segment not in {r["segmentId"] for r in rows}
    assert len(rows) == 2 * 2500  # the other two segments loaded whole
    one_clear_line(artisan, "artisan", "FAILED")
    FIGURES["faults_held"] += 2


def test_status_without_location_names_report_and_window(tmp_path):
    FIGURES["faults_tried"] += 1
    with small_sim() as sim:
        sim.kissmetrics.state.config.omit_location = True
        out = run_cli(tmp_path, vendor_config(sim, "kissmetrics"))
    one_clear_line(out, "kissmetrics", "Location")
    assert "kissmetrics_report_results" not in out.records
    FIGURES["faults_held"] += 1
