"""Every documented variant, through the streams and the CLI, against the simulator.

The simulator serves each variant the vendor docs show (``simulator/<vendor>.py``, each
switch citing its doc line; ``docs/vendor-coverage.md`` lists them all). The tap must load
exactly what a correct reader of the docs would, whichever variant the server picks.
"""

from __future__ import annotations

import datetime as dt

import pytest
from singer_output import run_cli

from simulator import SimConfig, Simulator
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig

pytestmark = pytest.mark.e2e


def settings(sim: Simulator, *vendors: str, **extra) -> dict:
    return {
        **sim.tap_config(),
        "export_poll_interval_seconds": 0.1,
        "export_poll_max_interval_seconds": 0.2,
        **({"vendors": list(vendors)} if vendors else {}),
        **extra,
    }


def requests_to(sim: Simulator, vendor: str, method: str, path: str) -> list:
    return [e for e in sim.requests if e.vendor == vendor and e.method == method and e.path == path]


def test_a_full_sync_with_every_variant_on_is_exact(tmp_path):
    with Simulator(SimConfig.all_variants(seed=31)) as sim:
        out = run_cli(tmp_path, settings(sim))
        truth = sim.truth()
        assert out.returncode == 0, out.stderr[-3000:]
        assert {s: out.count(s) for s in truth} == truth
        assert sim.storage.credential_leaks() == []
    out.assert_columns_announced()


# -- Artisan -------------------------------------------------------------------------------


def test_artisan_flat_jobs_emit_every_job_with_a_fallback_bookmark(tmp_path):
    artisan = ArtisanConfig(jobs_shape="gem", historical_jobs=6)
    with Simulator(SimConfig(seed=32, artisan=artisan)) as sim:
        out = run_cli(tmp_path, settings(sim, "artisan"))
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = out.records["artisan_jobs"]
    assert len(jobs) == 6 and all(job["id"] for job in jobs)
    # The gem's flat jobs carry no updated_at: it falls back to end, start, created_at.
    assert all(job["updated_at"] in (job["end"], job["start"], job["created_at"]) for job in jobs)
    bookmark = out.last_state["bookmarks"]["artisan_jobs"]["replication_key_value"]
    assert bookmark == max(job["updated_at"] for job in jobs)


def test_artisan_completed_before_its_result_url_is_polled_until_the_url_appears(tmp_path):
    artisan = ArtisanConfig(url_lag_polls=3, apps=1, segments_per_app=2)
    with Simulator(SimConfig(seed=33, artisan=artisan)) as sim:
        out = run_cli(tmp_path, settings(sim, "artisan"))
        truth = sim.truth()
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.count("artisan_segment_members") == truth["artisan_segment_members"]
    assert "result_url not yet set" in out.stderr


def test_a_result_url_that_never_comes_fails_that_export_by_job_id_only(tmp_path):
    artisan = ArtisanConfig(url_lag_polls=10_000, apps=1, segments_per_app=2)
    with Simulator(SimConfig(seed=34, artisan=artisan)) as sim:
        config = settings(sim, "artisan", export_timeout_seconds=2)
        out = run_cli(tmp_path, config)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "did not finish within export_timeout_seconds=2" in last, last
    assert out.count("artisan_apps") == 1 and out.count("artisan_jobs") > 0  # the others went on


def test_artisan_app_ids_need_no_apps_list(tmp_path):
    artisan = ArtisanConfig(apps=2, segments_per_app=2, apps_endpoint=False)
    with Simulator(SimConfig(seed=35, artisan=artisan)) as sim:
        app_id = sim.artisan.apps[0]["id"]
        config = settings(sim, "artisan", artisan_app_ids=[app_id])
        streams = ["artisan_segments", "artisan_segment_members", "artisan_profiles"]
        catalog = None
        out = run_cli(tmp_path, config)
        apps_requests = requests_to(sim, "artisan", "GET", "/public/api/apps")
    assert out.returncode == 0, out.stderr[-2000:]
    assert {r["app_id"] for s in streams for r in out.records[s]} == {app_id}
    # The apps list is asked only by artisan_apps, once; it answers 404 here (only the gem
    # documents it), so artisan_apps emits the configured app, and says so.
    assert len(apps_requests) == 1
    assert out.records["artisan_apps"] == [{"id": app_id, "name": None}]
    assert "documented only by the Ruby gem" in out.stderr
    assert catalog is None


def test_without_the_apps_list_and_app_ids_one_line_says_to_set_them(tmp_path):
    with Simulator(SimConfig(seed=36, artisan=ArtisanConfig(apps_endpoint=False))) as sim:
        out = run_cli(tmp_path, settings(sim, "artisan"))
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "Set artisan_app_ids" in last and "Traceback" not in out.stderr, last


# -- Indicative ------------------------------------------------------------------------------


def test_start_date_is_the_first_bookmark_of_indicative_exports(tmp_path):
    with Simulator(SimConfig(seed=37, indicative=IndicativeConfig(segments=6))) as sim:
        last_runs = sorted(s["lastRun"] for s in sim.indicative.segments if s["lastRun"])
        start = last_runs[len(last_runs) // 2]  # half the refreshed segments are older
        out = run_cli(tmp_path, settings(sim, "indicative", start_date=start))
        triggered = {k for k, n in sim.indicative.trigger_counts().items() if n}
    assert out.returncode == 0, out.stderr[-2000:]
    expected = {
        s["segmentId"] for s in sim.indicative.segments if not s["lastRun"] or s["lastRun"] >= start
    }
    assert triggered == expected
    assert {r["segmentId"] for r in out.records["indicative_segment_members"]} == expected


# -- Acoustic --------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["endpointID", "endpointId"])
def test_acoustic_endpoint_filter_holds_whichever_spelling_the_server_honours(spelling, tmp_path):
    acoustic = AcousticConfig(
        jobs_per_category=8, endpoint_param=spelling, endpoint_id=7, other_destination_jobs=True
    )
    with Simulator(SimConfig(seed=38, acoustic=acoustic)) as sim:
        out = run_cli(tmp_path, settings(sim, "acoustic"))
        truth = sim.truth()
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = out.records["acoustic_jobs"]
    assert jobs and all(7 in (j["producerEndpointID"], j["destinationEndpointID"]) for j in jobs)
    assert out.count("acoustic_segment_data") == truth["acoustic_segment_data"]
    assert out.count("acoustic_jobs") == truth["acoustic_jobs"]


def test_mark_complete_without_an_endpoint_is_a_settings_error_before_any_request(tmp_path):
    with Simulator(SimConfig(seed=39)) as sim:
        out = run_cli(tmp_path, settings(sim, "acoustic", acoustic_mark_complete=True))
        sent = [e for e in sim.requests if e.vendor == "acoustic"]
    assert out.returncode == 1 and sent == []
    last = out.stderr.strip().splitlines()[-1]
    assert "acoustic_mark_complete needs acoustic_endpoint_id" in last, last


@pytest.mark.parametrize("endpoint", [7, 85])
def test_mark_complete_marks_only_jobs_whose_destination_is_the_endpoint(endpoint, tmp_path):
    """Endpoint 7 is the destination of some jobs; 85 only ever produces them: its files are
    read (the filter keeps producer and destination), but no job of it is marked complete,
    since that would delete another endpoint's files."""
    acoustic = AcousticConfig(
        jobs_per_category=8, endpoint_id=endpoint, other_destination_jobs=True
    )
    with Simulator(SimConfig(seed=40, acoustic=acoustic)) as sim:
        out = run_cli(tmp_path, settings(sim, "acoustic", acoustic_mark_complete=True))
        marked = set(sim.acoustic.completed)
        destination = {j["jobId"]: j["destinationEndpointID"] for j in sim.acoustic.jobs}
    assert out.returncode == 0, out.stderr[-2000:]
    read = {r["jobId"] for r in out.records["acoustic_segment_data"]}
    assert read, "no segment data was read"
    assert marked == {job for job in read if destination[job] == endpoint}
    assert bool(marked) == (endpoint == 7)


# -- Kissmetrics -----------------------------------------------------------------------------


@pytest.mark.parametrize(("accepted", "status"), [("unix", 400), ("unix", 422), ("iso", 400)])
def test_kissmetrics_runs_fall_back_to_the_other_date_form_once(accepted, status, tmp_path):
    kissmetrics = KissmetricsConfig(reports=2, run_dates=accepted, rejected_date_status=status)
    with Simulator(SimConfig(seed=41, kissmetrics=kissmetrics)) as sim:
        start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)).date().isoformat()
        out = run_cli(tmp_path, {**settings(sim, "kissmetrics"), "start_date": start})
        rejected = sum(sim.kissmetrics.state.rejected.values())
        expected = sim.kissmetrics.expected_rows(start)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.count("kissmetrics_report_results") == expected
    # ISO is sent first; refused once at most per concurrent run, then Unix for the rest.
    assert rejected <= (1 if accepted == "iso" else 4) and (accepted == "iso") == (rejected == 0)
