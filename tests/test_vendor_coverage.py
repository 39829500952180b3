"""The rows of docs/vendor-coverage.md that no other test drove through the CLI.

Each test runs ``python -m tap_segments`` against the simulator with one documented variant
(or storage behaviour) switched on, keeps the run small, and checks what the far side of the
wire received (the vendor's request log, the storage's) as well as what the tap emitted. The
row ids of the document (S1, A7, I15, ...) are named in each test's docstring. Items the
simulator cannot serve at all (an HTTP -> HTTPS redirect, a job list that names no files)
are driven through the streams against requests-mock instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import subprocess
import typing as t
from urllib.parse import parse_qs

import pytest
import requests
import requests_mock as rm
from singer_output import CLI_RUNS, SyncOutput, cli_command, run_cli, run_in_process

from simulator import SimConfig, Simulator, data
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig
from simulator.storage import AUTH_PARAMS, StorageConfig
from tap_segments.errors import RedirectError

pytestmark = pytest.mark.e2e


def settings(sim: Simulator, *vendors: str, **extra: t.Any) -> dict:
    """The simulator's settings for ``vendors`` only, with quick polls."""
    return {
        **sim.tap_config(),
        "vendors": list(vendors),
        "export_poll_interval_seconds": 0.1,
        "export_poll_max_interval_seconds": 0.2,
        "http_retry_base_seconds": 0.05,
        **extra,
    }


def exact(out: SyncOutput, sim: Simulator, *streams: str) -> None:
    """Exit 0 and, for each stream, the simulator's count."""
    assert out.returncode == 0, out.stderr[-3000:]
    truth = sim.truth()
    assert {s: out.count(s) for s in streams} == {s: truth[s] for s in streams}


def last_line(out: SyncOutput) -> str:
    """The one ERROR line a failed run ends with."""
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert "ERROR" in line, line
    return line


def sent(sim: Simulator, vendor: str, method: str | None = None, path: str = "") -> list:
    """The vendor's requests (of ``method``, whose path matches ``path``)."""
    return [
        e
        for e in sim.requests
        if e.vendor == vendor and method in (None, e.method) and re.search(path, e.path)
    ]


def query(entry: t.Any) -> dict[str, list[str]]:
    return parse_qs(entry.query, keep_blank_values=True)


# -- result-file storage (S1-S14) -------------------------------------------------------------

SMALL_FILES = dict(
    indicative=IndicativeConfig(segments=2, rows_per_segment=25),
    artisan=ArtisanConfig(apps=1, segments_per_app=3, members_per_segment=10, profiles_per_app=5),
)


def test_result_files_are_read_only_through_their_presigned_urls(tmp_path):
    """S1, S2, S3, S5, S6, S7, S9, S10, S12, S13: every storage request is a GET of the
    presigned URL as the vendor gave it (every SigV4 parameter there, no credential header),
    so S3 never answers AccessDenied, SignatureDoesNotMatch, AuthorizationQueryParametersError
    or InvalidArgument; Indicative's file is first checked with a one-byte Range (206)."""
    with Simulator(SimConfig(seed=61, **SMALL_FILES)) as sim:
        out = run_cli(tmp_path, settings(sim, "indicative", "artisan"))
        exact(out, sim, "indicative_segment_members", "artisan_segment_members")
        storage = sim.storage.requests
        assert sim.storage.credential_leaks() == []
    assert storage and {r.method for r in storage} == {"GET"}  # never HEAD, never unsigned
    for request in storage:
        signed = query(request)
        assert all(signed.get(name) for name in AUTH_PARAMS), request.query
        assert request.header("Authorization") is None
        assert request.header("public-api-key") is None
        assert request.status in (200, 206), (request.status, request.path)
    indicative = [r for r in storage if r.path.startswith("/upload-bucket/")]
    ranged = [r for r in indicative if r.header("Range")]
    assert {(r.header("Range"), r.status) for r in ranged} == {("bytes=0-0", 206)}
    assert len(ranged) == 2 and len(indicative) == 4  # per export: the check, then the file


@pytest.mark.parametrize("gone", ["expired", "missing-403", "missing-404"])
def test_a_result_file_gone_at_storage_is_exported_again(gone, tmp_path):
    """S2, S4, S8, S12, I20, I21: the first URL Indicative hands out is expired by the time it is
    read (the storage's clock moved two hours on after signing it), or its object is gone
    (S3 answers 403 AccessDenied, or 404 NoSuchKey): the tap triggers the export again,
    once, and loads the new export's file whole."""
    storage = StorageConfig(missing_key_status=404 if gone == "missing-404" else 403)
    indicative = IndicativeConfig(segments=1, rows_per_segment=30)
    with Simulator(SimConfig(seed=62, indicative=indicative, storage=storage)) as sim:
        presign = sim.storage.presign
        spoiled: list[str] = []

        def presign_then_spoil(bucket: str, key: str, **kwargs: t.Any) -> str:
            url = presign(bucket, key, **kwargs)
            if not spoiled:
                spoiled.append(key)
                if gone == "expired":
                    sim.storage.clock.advance(2 * 3600)  # the URL is valid for one hour
                else:
                    sim.storage.delete(bucket, key)
            return url

        sim.storage.presign = presign_then_spoil  # type: ignore[method-assign]
        out = run_cli(tmp_path, settings(sim, "indicative"))
        exact(out, sim, "indicative_segment_members")
        segment = sim.indicative.segments[0]["segmentId"]
        assert sim.indicative.trigger_counts() == {segment: 2}
        first = [r for r in sim.storage.requests if r.path.endswith(spoiled[0])]
    assert [r.status for r in first] == [404 if gone == "missing-404" else 403]
    exports = {r["exportId"] for r in out.records["indicative_segment_members"]}
    assert len(exports) == 1 and spoiled[0] not in {f"path/to/{e}.csv" for e in exports}
    assert "Triggering the export again" in out.stderr


def test_a_307_redirect_to_the_other_storage_origin_is_followed_without_credentials(tmp_path):
    """S11 (307, S3's TemporaryRedirect, to the second origin), S13: Artisan's JSON and CSV
    result files load whole through the redirect, and neither origin sees a credential."""
    config = SimConfig(
        seed=63, **SMALL_FILES, storage=StorageConfig(redirect="other", redirect_status=307)
    )
    with Simulator(config) as sim:
        out = run_cli(tmp_path, settings(sim, "artisan"))
        exact(out, sim, "artisan_segment_members", "artisan_profiles")
        storage = sim.storage.requests
        origins = sim.storage.origins
        assert sim.storage.credential_leaks() == []
    redirected = [r for r in storage if r.status == 307]
    served = [r for r in storage if r.status == 200]
    assert len(redirected) == len(served) == 3 + 1  # three segments, one profile export
    assert {r.origin for r in redirected} == {origins[0]}
    assert {r.origin for r in served} == {origins[1]}


#: ``python -m tap_segments`` that writes its own peak resident set (``VmHWM``) on exit. Not
#: ``getrusage``: after a ``vfork`` the child's ``ru_maxrss`` starts at the parent's (pytest's).
PEAK_REPORTING_TAP = """
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("PEAK_RSS_KB " + line.split()[1] + "\\n")
atexit.register(peak)
sys.argv[0] = "tap-segments"
runpy.run_module("tap_segments", run_name="__main__")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_a_result_file_of_600k_rows_streams_in_flat_memory(tmp_path):
    """S14: a 600,000-row Indicative export (about 41 MB of CSV, served as it is generated)
    goes through the tap with a peak resident set under the benchmark's 120 MB goal: the
    rows as Python objects would take several times the file (SPEC: memory stays flat)."""
    rows = 600_000
    indicative = IndicativeConfig(segments=1, rows_per_segment=rows, polls_to_complete=1)
    with Simulator(SimConfig(seed=64, indicative=indicative)) as sim:
        config = settings(sim, "indicative")
        command, env = cli_command(tmp_path, config, None)
        command = [command[0], "-c", PEAK_REPORTING_TAP, *command[3:]]  # not "-m tap_segments"
        done = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=300
        )
        log = done.stderr.decode(errors="replace")
        CLI_RUNS.append((config, log))
        size = data.member_csv_size(sim.config.seed, sim.indicative.segments[0]["segmentId"], rows)
    assert done.returncode == 0, log[-3000:]
    counted = sum(
        json.loads(line.split("METRIC: ", 1)[1])["value"]
        for line in log.splitlines()
        if "METRIC: " in line
        and '"record_count"' in line
        and '"indicative_segment_members"' in line
    )
    assert counted == rows
    peak_mb = int(re.findall(r"^PEAK_RSS_KB (\d+)$", log, re.MULTILINE)[-1]) / 1024
    assert size > 38 * 2**20 and peak_mb < 120, (size, peak_mb)


def test_a_file_gone_between_the_check_and_the_read_is_exported_again(tmp_path):
    """I21: SPEC, "an export ... whose file answers 403/404 is triggered afresh". The
    exports stream checks the first byte (206), then the object disappears before the
    members stream reads it; the tap must trigger the export again, not stop."""
    indicative = IndicativeConfig(segments=1, rows_per_segment=30)
    with Simulator(SimConfig(seed=65, indicative=indicative)) as sim:
        answer = sim.storage.answer
        checked: list[str] = []

        def answer_then_delete(method: str, path: str, raw: str, headers: t.Any, origin: int):
            result = answer(method, path, raw, headers, origin)
            if not checked and headers.get("Range") and result[0].status == 206:
                bucket, _, key = path.lstrip("/").partition("/")
                checked.append(key)
                sim.storage.delete(bucket, key)
            return result

        sim.storage.answer = answer_then_delete  # type: ignore[method-assign]
        out = run_cli(tmp_path, settings(sim, "indicative"))
        segment = sim.indicative.segments[0]["segmentId"]
        triggers = sim.indicative.trigger_counts()
    assert checked, "the file was never checked"
    assert out.returncode == 0, out.stderr.strip().splitlines()[-1]
    assert triggers == {segment: 2}
    assert out.count("indicative_segment_members") == 30


# -- Artisan (A1-A30) ----------------------------------------------------------------------------

CALLBACK = "https://hooks.example.test/artisan-done"


@pytest.mark.parametrize("callback", [None, CALLBACK], ids=["no-callback", "callback"])
def test_artisan_requests_carry_both_keys_and_a_callback_only_when_set(callback, tmp_path):
    """A2, A3, A4, A6, A7, A8, A9, A14, A15, A22: every request carries the two key headers and
    ``Accept: application/json``; one POST per segment and one profile export per app, with
    ``{"callbackUrl"}`` (and its ``Content-Type``) only when ``artisan_callback_url`` is set;
    the jobs are polled by id, never through the callback, ``/jobs/status/{status}`` or the
    one-profile path."""
    artisan = ArtisanConfig(apps=1, segments_per_app=2, members_per_segment=5, profiles_per_app=4)
    with Simulator(SimConfig(seed=66, artisan=artisan)) as sim:
        extra = {"artisan_callback_url": callback} if callback else {}
        out = run_cli(tmp_path, settings(sim, "artisan", **extra))
        exact(out, sim, *ARTISAN_STREAMS)
        requests_sent = sent(sim, "artisan")
        callbacks = list(sim.artisan.callback_urls)
    token = f'Token token="{artisan.secret_key}"'
    for request in requests_sent:
        assert request.header("Authorization") == token
        assert request.header("public-api-key") == artisan.public_key
        assert request.header("Accept") == "application/json"
        assert request.status == 200, (request.method, request.path, request.status)
    posts = [r for r in requests_sent if r.method == "POST"]
    assert sorted(r.path.rsplit("/", 1)[-1] for r in posts) == sorted(
        [s["id"] for s in sim.artisan.segments[sim.artisan.apps[0]["id"]]] + ["export"]
    )
    types = {r.header("Content-Type") for r in posts}
    assert types == ({"application/json"} if callback else {None})
    assert callbacks == [callback] * len(posts) if callback else callbacks == []
    polled = {r.path for r in requests_sent if r.path.startswith("/public/api/jobs/")}
    assert polled and not [p for p in polled if p.startswith("/public/api/jobs/status/")]
    assert not [
        r
        for r in requests_sent
        if re.fullmatch(r".*/users/[^/]+", r.path) and not r.path.endswith("/users/export")
    ]


ARTISAN_STREAMS = (
    "artisan_apps",
    "artisan_segments",
    "artisan_jobs",
    "artisan_profiles",
    "artisan_segment_members",
)


@pytest.mark.parametrize("shape", ["gem", "bare"])
def test_artisan_profiles_by_configured_ids_in_either_body_shape(shape, tmp_path):
    """A9, A10, A11, A12, A13: with Artisan and Shared User IDs configured, each app's
    profiles are read with ``GET .../users?ids=...`` (``source=custom`` for Shared User IDs,
    each source in its own request, so never both kinds at once), from the gem's
    ``{"success", "response"}`` wrapper or a bare list; every documented field is kept, the
    app id added; no profile export is triggered and the one-profile path is not used."""
    artisan = ArtisanConfig(apps=2, segments_per_app=1, members_per_segment=3, profiles_shape=shape)
    device_ids, shared_ids = ["device-a", "device-b"], ["shared-c"]
    with Simulator(SimConfig(seed=67, artisan=artisan)) as sim:
        config = settings(
            sim, "artisan", artisan_profile_ids=device_ids, artisan_shared_user_ids=shared_ids
        )
        out = run_cli(tmp_path, config)
        users = sent(sim, "artisan", "GET", r"/users")
        exports = sent(sim, "artisan", "POST", r"/users/export$")
        apps = [app["id"] for app in sim.artisan.apps]
        expected = [
            {**sim.artisan.profile(app, identifier, source), "app_id": app}
            for app in apps
            for source, ids in (("artisan", device_ids), ("custom", shared_ids))
            for identifier in ids
        ]
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(out.records["artisan_profiles"], key=json.dumps) == sorted(
        expected, key=json.dumps
    )
    assert exports == []
    asked = sorted((r.path, json.dumps(query(r), sort_keys=True)) for r in users)
    assert asked == sorted(
        (f"/public/api/apps/{app}/users", json.dumps(q, sort_keys=True))
        for app in apps
        for q in ({"ids": ["device-a,device-b"]}, {"ids": ["shared-c"], "source": ["custom"]})
    )


JOB_VARIANTS = [
    # (GET /public/api/jobs shape, GET /public/api/jobs/{id} shape, status words, id field)
    ("rest", "rest", "rest", None),
    ("gem", "gem", "gem", "id"),
    ("rest", "alternate", "rest_upper", "_id"),
    ("gem", "alternate", "mixed", None),
]


@pytest.mark.parametrize(("jobs_shape", "job_shape", "words", "id_field"), JOB_VARIANTS)
def test_artisan_jobs_and_exports_in_each_documented_shape_and_spelling(
    jobs_shape, job_shape, words, id_field, tmp_path
):
    """A16, A17, A18, A19, A20, A21, A23, A24, A25, A27: the jobs list in the REST (wrapped)
    or gem (flat) shape, each job's polls in either shape, statuses in every documented
    spelling, the id as ``_id`` or ``id``: every job is emitted with every field the shape
    has, its id as ``id`` and its status upper-cased, and every export loads whole."""
    artisan = ArtisanConfig(
        apps=1,
        segments_per_app=3,
        members_per_segment=6,
        profiles_per_app=4,
        jobs_shape=jobs_shape,
        job_shape=job_shape,
        status_words=words,
        id_field=id_field,
    )
    with Simulator(SimConfig(seed=68, artisan=artisan)) as sim:
        served = requests.get(
            f"{sim.base_url('artisan')}/public/api/jobs",
            headers={
                "Authorization": f'Token token="{artisan.secret_key}"',
                "public-api-key": artisan.public_key,
            },
            timeout=10,
        ).json()["jobs"]
        out = run_cli(tmp_path, settings(sim, "artisan"))
        exact(out, sim, *ARTISAN_STREAMS)
    emitted = {job["id"]: job for job in out.records["artisan_jobs"]}
    for item in served:
        job = item.get("jobs", item)  # the REST shape wraps each job
        job_id = job.get("_id", job.get("id"))
        record = emitted[job_id]
        for name, value in job.items():
            if name in ("_id", "id"):
                continue
            if name == "status":
                assert record["status"] == value.upper()
            elif name != "updated_at" or value:
                assert record[name] == value, name
        if jobs_shape == "gem":  # no updated_at: the newest of end, start, created_at
            assert record["updated_at"] == (job["end"] or job["start"] or job["created_at"])
    assert len(emitted) == len(served)


def test_artisan_export_jobs_keep_their_type_and_identifier(tmp_path):
    """A29: the jobs the first run's exports created come out of the next run's
    ``artisan_jobs`` with the vendor's ``type`` and ``identifier``: "Segments Export" /
    "sgmt-export" for segments, the simulator's "Profiles Export" / "profile-export"."""
    artisan = ArtisanConfig(apps=1, segments_per_app=2, members_per_segment=4, profiles_per_app=3)
    with Simulator(SimConfig(seed=69, artisan=artisan)) as sim:
        first = run_cli(tmp_path, settings(sim, "artisan"))
        exact(first, sim, *ARTISAN_STREAMS)
        second = run_cli(tmp_path, settings(sim, "artisan"), first.last_state)
    assert second.returncode == 0, second.stderr[-3000:]
    before = {job["id"] for job in first.records["artisan_jobs"]}
    made = [job for job in second.records["artisan_jobs"] if job["id"] not in before]
    assert sorted((job["type"], job["identifier"]) for job in made) == [
        ("Profiles Export", "profile-export"),
        ("Segments Export", "sgmt-export"),
        ("Segments Export", "sgmt-export"),
    ]
    assert {r["job_id"] for r in first.records["artisan_segment_members"]} < {
        job["id"] for job in made
    }
    assert {job["status"] for job in made} <= {"COMPLETED", "COMPLETE"}


# -- Indicative (I1-I22) -------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "gzip"), [("table", False), ("example", True)])
def test_indicative_segments_and_exports_keep_every_documented_field(fields, gzip, tmp_path):
    """I1, I3, I4, I11, I12, I13, I14, I15, I16, I17, I18, I19, I22: Basic auth on every
    request; every segment as listed (null description, category and lastRun kept); one
    export per segment, polled until COMPLETE (``filename`` null before) and never again;
    its record keeps the export object, with or without the table's top-level ``projectId``,
    and its ``filename`` without the URL's signature; the (gzip) file loads whole."""
    indicative = IndicativeConfig(
        segments=4, rows_per_segment=12, export_fields=fields, gzip=gzip, polls_to_complete=3
    )
    with Simulator(SimConfig(seed=70, indicative=indicative)) as sim:
        out = run_cli(tmp_path, settings(sim, "indicative"))
        exact(out, sim, "indicative_segments", "indicative_segment_exports")
        exact(out, sim, "indicative_segment_members")
        requests_sent = sent(sim, "indicative")
        polls = sim.indicative.status_polls()
        segments = sim.indicative.segments
    pair = f"{indicative.api_key}:{indicative.access_token}".encode()
    basic = "Basic " + base64.b64encode(pair).decode()
    assert {r.header("Authorization") for r in requests_sent} == {basic}
    assert {(r.method, r.status) for r in requests_sent} == {("GET", 200), ("POST", 200)}
    assert out.records["indicative_segments"] == segments
    assert set(polls.values()) == {3}  # PENDING, PENDING, COMPLETE: never polled again
    exports = out.records["indicative_segment_exports"]
    assert sorted(e["segmentId"] for e in exports) == sorted(s["segmentId"] for s in segments)
    for export in exports:
        assert export["exportId"] in polls and export["status"] == "COMPLETE"
        assert ("projectId" in export) == (fields == "table")
        assert export["segment"] == next(
            s for s in segments if s["segmentId"] == export["segmentId"]
        )
        assert export["endTime"] >= export["startTime"]
        suffix = ".csv.gz" if gzip else ".csv"
        assert export["filename"].endswith(f"/upload-bucket/path/to/{export['exportId']}{suffix}")


def test_a_project_without_export_api_access_stops_with_one_line(tmp_path):
    """I7: the export endpoints answer 403 ("the specified project does not have access to
    the Export API") while the segments list still works: the run stops at the first
    trigger with one line naming Indicative, the endpoint and the settings to check."""
    indicative = IndicativeConfig(segments=2, rows_per_segment=5, export_api_access=False)
    with Simulator(SimConfig(seed=71, indicative=indicative)) as sim:
        out = run_cli(tmp_path, settings(sim, "indicative"))
        refused = sent(sim, "indicative", "POST")
    line = last_line(out)
    assert "Indicative: 403" in line and "/service/v1/segments/export/" in line, line
    assert "indicative_api_key" in line and "indicative_access_token" in line, line
    assert refused and {r.status for r in refused} == {403}
    assert {r.status for r in sent(sim, "indicative", "GET", "/segments/list$")} == {200}
    assert out.count("indicative_segment_members") == 0


WRONG_KEYS = {
    "artisan": ("artisan_secret_api_key", "Artisan", ("artisan_public_api_key",)),
    "indicative": ("indicative_access_token", "Indicative", ("indicative_api_key",)),
    "kissmetrics": ("kissmetrics_api_token", "Kissmetrics", ()),
    "acoustic": ("acoustic_auth_key", "Acoustic Exchange", ()),
}


@pytest.mark.parametrize("vendor", list(WRONG_KEYS))
def test_wrong_credentials_stop_with_one_line_naming_the_settings(vendor, tmp_path):
    """A2, A3, I6, K4, X2: the vendor answers 401 to a wrong key; the run stops at once with one
    line naming the vendor and the settings to check, never the value."""
    setting, label, others = WRONG_KEYS[vendor]
    wrong = f"wrong-{vendor}-value-7q"
    with Simulator(SimConfig(seed=72)) as sim:
        out = run_cli(tmp_path, settings(sim, vendor, **{setting: wrong}))
        answers = [r.status for r in sent(sim, vendor)]
    line = last_line(out)
    assert f"{label}: 401" in line and setting in line, line
    assert all(name in line for name in others), line
    assert wrong not in out.stderr and wrong not in out.stdout
    assert answers and set(answers) == {401} and len(answers) == 1  # no retry of a 401


# -- Kissmetrics (K1-K22) ------------------------------------------------------------------------


def days_ago(days: int) -> str:
    """Midnight (UTC) ``days`` before today, as a ``start_date``."""
    today = dt.datetime.now(dt.timezone.utc).date()
    return (today - dt.timedelta(days=days)).isoformat() + "T00:00:00Z"


@pytest.mark.parametrize(("run_host", "next_links"), [("query", True), ("core", False)])
def test_kissmetrics_runs_follow_the_apis_own_links(run_host, next_links, tmp_path):
    """K1, K2, K3, K4, K6, K7, K8, K9, K10, K14, K15, K16, K17, K18, K19, K20, K21, K22: the
    Bearer token and ``Accept: application/json`` on both hosts, ``Content-Type:
    application/json`` on every run (the simulator refuses a run without it); each report
    kept as listed, HAL links included; each window run through the report's ``run`` link
    (query or core host), the status followed from ``Location`` through 202, 200 and 201,
    the results paged 50 at a time by the ``next`` link or by limit/offset, and the
    ``export`` link never followed."""
    kissmetrics = KissmetricsConfig(
        reports=2,
        max_rows_per_window=130,
        run_link_host=run_host,
        next_links=next_links,
        require_content_type=True,
        polls_to_complete=3,
    )
    start = days_ago(2)
    with Simulator(SimConfig(seed=73, kissmetrics=kissmetrics)) as sim:
        token = f"Bearer {kissmetrics.token}"
        listed = requests.get(
            f"{sim.base_url('kissmetrics')}/core/reports",
            headers={"Authorization": token},
            timeout=10,
        ).json()
        ours = len(sim.requests)  # the listing above is the test's, not the tap's
        out = run_cli(tmp_path, settings(sim, "kissmetrics", start_date=start))
        expected = sim.kissmetrics.rows_by_window(start)
        requests_sent = [r for r in sim.requests[ours:] if r.vendor == "kissmetrics"]
        queries = {query_id: q["polls"] for query_id, q in sim.kissmetrics.state.queries.items()}
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.records["kissmetrics_reports"] == listed
    assert {r.header("Authorization") for r in requests_sent} == {token}
    assert {r.header("Accept") for r in requests_sent} == {"application/json"}
    runs = [r for r in requests_sent if r.method == "POST"]
    assert len(runs) == len(expected) == 2 * 2 and {r.status for r in runs} == {202}
    assert {r.header("Content-Type") for r in runs} == {"application/json"}
    run_path = r"^/query/reports/[^/]+/run$" if run_host == "core" else r"^/v2/products/"
    assert all(re.search(run_path, r.path) for r in runs)
    assert set(queries.values()) == {3}  # 202 (queued), 200 (running), 201 (done)
    statuses = [r.status for r in requests_sent if r.path.endswith("/status")]
    assert sorted(statuses) == sorted([202, 200, 201] * len(runs))
    pages = [query(r) for r in requests_sent if r.path.endswith("/results")]
    assert {p["limit"][0] for p in pages} == {"50"}
    assert sorted(int(p["offset"][0]) for p in pages) == sorted(
        offset for rows in expected.values() for offset in range(0, max(rows, 1), 50)
    )
    assert not [r for r in requests_sent if r.path.endswith("/export")]
    results = out.records["kissmetrics_report_results"]
    counted: dict[tuple[str, str], int] = {}
    for row in results:
        key = (row["report_id"], row["window_start"])
        counted[key] = counted.get(key, 0) + 1
    assert counted == {key: rows for key, rows in expected.items() if rows}


def test_a_run_refused_in_both_date_forms_is_one_line(tmp_path):
    """K13: a run refused with 400 in the ISO form and then in Unix seconds ends the run
    with one line naming the report window and saying both documented forms were tried."""
    kissmetrics = KissmetricsConfig(reports=1, max_rows_per_window=10)
    with Simulator(SimConfig(seed=74, kissmetrics=kissmetrics)) as sim:
        sim.faults.add(
            "status", vendor="kissmetrics", method="POST", path="/run$", status=400, times=2
        )
        config = settings(sim, "kissmetrics", start_date=days_ago(1), max_concurrent_exports=1)
        out = run_cli(tmp_path, config)
        runs = sent(sim, "kissmetrics", "POST")
    line = last_line(out)
    assert "both documented date forms were refused" in line and "400" in line, line
    assert len(runs) == 2
    assert "kissmetrics_report_results" not in out.records


def test_a_kissmetrics_base_url_on_http_that_redirects_to_https_stops_naming_the_setting():
    """K5 (through the streams; the simulator serves loopback HTTP only): "Calls made over
    HTTP will result in a 301 Permanent Redirect." The token is never sent to the HTTPS
    origin the redirect names (another origin): the run stops naming the setting to fix."""
    config = {
        "kissmetrics_api_base_url": "http://api.km.test",
        "kissmetrics_query_base_url": "http://query.km.test",
        "kissmetrics_api_token": "km-http-token-3x",
    }
    with rm.Mocker() as mocker:
        mocker.get(
            "http://api.km.test/core/reports",
            status_code=301,
            headers={"Location": "https://api.km.test/core/reports"},
        )
        mocker.get("https://api.km.test/core/reports", json=[])
        with pytest.raises(RedirectError, match=r"https://api\.km\.test:443.*kissmetrics_api_base"):
            run_in_process(config)
        hosts = [(r.scheme, r.hostname) for r in mocker.request_history]
    assert hosts == [("http", "api.km.test")]


# -- Acoustic Exchange (X1-X27) ------------------------------------------------------------------

FINAL = {"COMPLETE", "ERROR", "CANCELLED", "NOTFOUND"}


@pytest.mark.parametrize(
    ("dates", "field_set", "endpoint"),
    [("epoch_ms", "full", None), ("iso", "list_example", 7)],
)
def test_acoustic_jobs_keep_every_documented_field(dates, field_set, endpoint, tmp_path):
    """X1, X4, X5, X6, X9, X10, X11, X12, X13, X14, X15, X16, X17, X18, X26, X27: every
    category's jobs, in every documented status, listed once with ``extraFields=true`` and
    ``includeProducerSegmentIDString=true`` (no status filter: statuses are read, not
    asked for), the endpoint filter in both spellings when set; each job keeps every field
    the list gave (``scheduleDetails`` whole, the list example's missing fields left
    missing), ``started``/``ended`` as epoch milliseconds whichever form came, with ISO
    copies; jobs not final stay open in the state; scheduled jobs as served."""
    acoustic = AcousticConfig(
        jobs_per_category=9,
        rows_per_file=(3, 6),
        all_statuses=True,
        dates=dates,
        field_set=field_set,
        endpoint_id=endpoint,
        other_destination_jobs=endpoint is not None,
    )
    with Simulator(SimConfig(seed=75, acoustic=acoustic)) as sim:
        out = run_cli(tmp_path, settings(sim, "acoustic"))
        exact(out, sim, "acoustic_jobs", "acoustic_scheduled_jobs", "acoustic_segment_data")
        lists = sent(sim, "acoustic", "GET", r"^/v1/jobs/[A-Z_]+$")
        scheduled = sent(sim, "acoustic", "GET", r"^/v1/scheduledjobs/")
        jobs = [
            job for job in sim.acoustic.jobs if sim.acoustic.of_endpoint(job, sim.acoustic.endpoint)
        ]
        expected_scheduled = sim.acoustic.scheduled_of(sim.acoustic.endpoint)
    filters = {"endpointID": [str(endpoint)], "endpointId": [str(endpoint)]} if endpoint else {}
    assert sorted(r.path for r in lists) == [
        "/v1/jobs/IDENTITY_IMPORT",
        "/v1/jobs/SEGMENT_EXPORT",
        "/v1/jobs/SEGMENT_POPULATE_DB",
    ]
    for request in lists:
        assert query(request) == {
            "extraFields": ["true"],
            "includeProducerSegmentIDString": ["true"],
            **filters,
        }
    assert {json.dumps(query(r)) for r in scheduled} == {
        json.dumps({"endpointId": [str(endpoint)]} if endpoint else {})
    }
    emitted = {(r["jobCategory"], r["jobId"]): r for r in out.records["acoustic_jobs"]}
    assert len(emitted) == len(jobs)
    for job in jobs:
        record = emitted[(job["jobCategory"], job["jobId"])]
        for name, value in job.items():
            if field_set == "list_example" and name in ("subStatus", "errorDetails", "shareAction"):
                assert name not in record
            else:
                assert record[name] == value, name
        for moment in ("started", "ended"):
            millis = job[moment]
            iso = (
                None
                if millis is None
                else dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc)
            )
            assert record[f"{moment}_iso"] == (iso and iso.isoformat(timespec="milliseconds"))
    statuses = {r["status"] for r in emitted.values()}
    assert statuses == {job["status"] for job in jobs}
    assert len(statuses) == (9 if endpoint is None else 5)  # all 9 documented statuses
    assert all(r["ended"] is None for r in emitted.values() if r["status"] == "RUNNING")
    partitions = out.last_state["bookmarks"]["acoustic_jobs"]["partitions"]
    still_open = {str(j) for p in partitions for j in p["open_jobs"]}
    assert still_open == {str(j["jobId"]) for j in jobs if j["status"] not in FINAL}
    scheduled_records = sorted(out.records.get("acoustic_scheduled_jobs", []), key=json.dumps)
    assert scheduled_records == sorted(
        (
            {
                "jobId": job["scheduledJobId"],
                "state": "SCHEDULED",
                "jobCategory": "SEGMENT_EXPORT",
                "jobName": "EXPORT_SEGMENT",
                "accountId": 2,
                "active": 1 if job["jobId"] % 2 == 0 else 2,
                "errorDetails": None,
            }
            for job in expected_scheduled
        ),
        key=json.dumps,
    )


@pytest.mark.parametrize("files_path", ["both", "segmentDateFiles"])
def test_acoustic_files_are_read_at_the_documented_path(files_path, tmp_path):
    """X20, X22: files are asked for at ``/v1/jobs/{id}/segmentDataFiles/{name}``, the GET path
    the doc documents. A server that also answers the DELETE example's typo on GET loads
    whole; one that answers only the typo (our choice, not in the doc) gets each file
    named in a warning, nothing loaded and no job marked complete."""
    acoustic = AcousticConfig(jobs_per_category=4, rows_per_file=(3, 6), files_path=files_path)
    with Simulator(SimConfig(seed=76, acoustic=acoustic)) as sim:
        config = settings(sim, "acoustic", acoustic_mark_complete=True, acoustic_endpoint_id="7")
        ready, rows = sim.acoustic.ready_files(), sim.truth()["acoustic_segment_data"]
        out = run_cli(tmp_path, config)
        files = sent(sim, "acoustic", "GET", "/segmentDat")
        marked = list(sim.acoustic.completed)
    assert out.returncode == 0, out.stderr[-3000:]
    assert files and all("/segmentDataFiles/" in r.path for r in files)
    if files_path == "both":
        assert out.count("acoustic_segment_data") == rows
        assert sorted(marked) == sorted({job for job, _ in ready})
    else:
        assert out.count("acoustic_segment_data") == 0 and marked == []
        for job, name in ready:
            assert f"job {job} file {name} answered 404" in out.stderr


def test_acoustic_mark_complete_answering_false_is_tried_again_next_run(tmp_path):
    """X24: ``PUT .../status/complete`` answers ``false`` ("not marked complete"): the rows
    are emitted, a warning names the job, the files stay in the state so the next run
    emits none of them again and asks for the PUT once more."""
    acoustic = AcousticConfig(jobs_per_category=4, rows_per_file=(3, 6), complete_succeeds=False)
    with Simulator(SimConfig(seed=77, acoustic=acoustic)) as sim:
        config = settings(sim, "acoustic", acoustic_mark_complete=True, acoustic_endpoint_id="7")
        first = run_cli(tmp_path, config)
        exact(first, sim, "acoustic_segment_data")
        ready_jobs = sorted({job for job, _ in sim.acoustic.ready_files()})
        after_first = sorted(sim.acoustic.completed)
        second = run_cli(tmp_path, config, first.last_state)
        after_second = sorted(sim.acoustic.completed)
    assert after_first == ready_jobs
    for job in ready_jobs:
        assert f"answered false: job {job} is not marked complete" in first.stderr
    done = first.last_state["bookmarks"]["acoustic_segment_data"]["files_done"]
    assert sorted(int(job) for job in done) == ready_jobs
    assert second.returncode == 0 and second.count("acoustic_segment_data") == 0
    assert after_second == sorted(ready_jobs * 2)


@pytest.mark.parametrize("shape", ["array", "object"])
def test_a_ready_job_listed_without_files_is_asked_for_them_in_either_shape(shape):
    """X19 (through the streams; the simulator's list always names the files): a
    READY_FOR_DOWNLOAD job whose list entry has no ``segmentDataFiles`` is read with
    ``GET /v1/jobs/SEGMENT_EXPORT/{jobId}``, answered as the doc's one-element array or a
    bare object; its files then load."""
    base = "https://exchange.acoustic.test"
    job = {
        "jobId": 11,
        "jobCategory": "SEGMENT_EXPORT",
        "status": "READY_FOR_DOWNLOAD",
        "started": 1763632800000,
        "ended": 1763632860000,
        "destinationEndpointID": 7,
        "producerEndpointID": 85,
    }
    detail = {**job, "segmentDataFiles": ["11_a.csv"]}
    config = {
        "acoustic_base_url": base,
        "acoustic_auth_key": "ax-key-5m",
        "acoustic_job_categories": ["SEGMENT_EXPORT"],
    }
    with rm.Mocker() as mocker:
        mocker.get(re.compile(rf"{base}/v1/jobs/SEGMENT_EXPORT(\?.*)?$"), json=[job])
        mocker.get(
            f"{base}/v1/jobs/SEGMENT_EXPORT/11", json=[detail] if shape == "array" else detail
        )
        mocker.get(f"{base}/v1/jobs/11/segmentDataFiles/11_a.csv", text="email\na@x.io\nb@x.io\n")
        mocker.get(f"{base}/v1/scheduledjobs/SEGMENT_EXPORT", json=[])
        out = run_in_process(config)
        asked = [r.path for r in mocker.request_history]
    assert [
        (r["jobId"], r["file_name"], r["email"]) for r in out.records["acoustic_segment_data"]
    ] == [
        (11, "11_a.csv", "a@x.io"),
        (11, "11_a.csv", "b@x.io"),
    ]
    assert "/v1/jobs/segment_export/11" in asked
