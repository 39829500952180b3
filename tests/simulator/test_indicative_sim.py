"""The simulated Indicative API: documented shapes, export lifecycle, files, expiry, faults, CLI.

Everything is checked with plain ``requests``, as a client that knows only the vendor doc.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig

REPO = Path(__file__).resolve().parents[2]
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SEGMENT_FIELDS = {"segmentId", "name", "description", "category", "projectId", "type", "lastRun"}
EXPORT_FIELDS = {"exportId", "segment", "status", "projectId", "startTime", "endTime", "filename"}


@pytest.fixture
def sim():
    config = SimConfig(seed=3, indicative=IndicativeConfig(segments=4, rows_per_segment=7))
    with Simulator(config) as simulator:
        yield simulator


def auth(sim: Simulator) -> tuple[str, str]:
    config = sim.tap_config()
    return config["indicative_api_key"], config["indicative_access_token"]


def api(sim: Simulator, path: str) -> str:
    return f"{sim.tap_config()['indicative_base_url']}/service/v1/segments{path}"


def segment_id(sim: Simulator, index: int) -> str:
    return sim.indicative.segments[index]["segmentId"]


def trigger(sim: Simulator, segment: str, path: str = "/export/") -> requests.Response:
    return requests.post(
        api(sim, path), json={"segmentId": segment, "outputFormat": "csv"}, auth=auth(sim)
    )


def poll(sim: Simulator, export_id: str) -> requests.Response:
    return requests.get(api(sim, f"/export/{export_id}"), auth=auth(sim))


def export_until_done(sim: Simulator, segment: str) -> dict:
    export = trigger(sim, segment).json()
    for _ in range(10):
        status = poll(sim, export["exportId"]).json()
        if status["status"] != "PENDING":
            return status
    raise AssertionError("export never finished")


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


# -- auth and documented shapes ------------------------------------------------------------


def test_basic_auth_is_required_everywhere_but_files(sim):
    for credentials in (None, ("wrong", "creds"), (auth(sim)[0], "wrong-token")):
        answer = requests.get(api(sim, "/list"), auth=credentials)
        assert answer.status_code == 401
        assert "error" in answer.json()
    assert trigger(sim, segment_id(sim, 0)).status_code == 200
    assert requests.post(api(sim, "/export/"), json={}).status_code == 401
    assert requests.get(api(sim, "/list"), auth=auth(sim)).status_code == 200


def test_segments_list_has_every_documented_field(sim):
    segments = requests.get(api(sim, "/list"), auth=auth(sim)).json()
    assert len(segments) == 4 == sim.truth()["indicative_segments"]
    assert all(set(s) == SEGMENT_FIELDS for s in segments)
    assert all(UUID.match(s["segmentId"]) and s["type"] in ("Static", "Dynamic") for s in segments)
    assert len({s["projectId"] for s in segments}) == 1
    last_runs = [s["lastRun"] for s in segments]
    assert None in last_runs and all(ISO_MILLIS.match(r) for r in last_runs if r)
    assert None in [s["description"] for s in segments]
    assert None in [s["category"] for s in segments]


def test_same_seed_same_segments():
    def ids(seed: int) -> list[str]:
        with Simulator(SimConfig(seed=seed)) as simulator:
            return [s["segmentId"] for s in simulator.indicative.segments]

    assert ids(5) == ids(5) != ids(6)


# -- export lifecycle ----------------------------------------------------------------------


def test_export_is_pending_then_complete_after_three_polls(sim):
    segment = sim.indicative.segments[0]
    export = trigger(sim, segment["segmentId"]).json()
    assert set(export) == EXPORT_FIELDS and UUID.match(export["exportId"])
    assert export["segment"] == segment and export["projectId"] == segment["projectId"]
    assert (export["status"], export["endTime"], export["filename"]) == ("PENDING", None, None)
    assert ISO_MILLIS.match(export["startTime"])
    answers = [poll(sim, export["exportId"]).json() for _ in range(3)]
    assert [a["status"] for a in answers] == ["PENDING", "PENDING", "COMPLETE"]
    done = answers[-1]
    assert ISO_MILLIS.match(done["endTime"])
    assert done["filename"] == f"{sim.url}/indicative/files/{export['exportId']}.csv"


def test_export_accepts_the_path_without_trailing_slash_and_refuses_bad_bodies(sim):
    assert trigger(sim, segment_id(sim, 1), path="/export").json()["status"] == "PENDING"
    assert trigger(sim, "no-such-segment").status_code == 404
    bad = requests.post(api(sim, "/export/"), data=b"{not json", auth=auth(sim))
    assert bad.status_code == 400
    assert requests.post(api(sim, "/export/"), json={}, auth=auth(sim)).status_code == 400


def test_export_done_after_wall_time_when_export_seconds_is_set(sim):
    sim.indicative.config.export_seconds = 0.3
    export = trigger(sim, segment_id(sim, 0)).json()
    assert [poll(sim, export["exportId"]).json()["status"] for _ in range(5)] == ["PENDING"] * 5
    time.sleep(0.35)
    assert poll(sim, export["exportId"]).json()["status"] == "COMPLETE"


@pytest.mark.parametrize("which", ["index", "segmentId"])
def test_configured_segments_end_failed_without_a_file(sim, which):
    sim.indicative.config.fail_segments = {2 if which == "index" else segment_id(sim, 2)}
    status = export_until_done(sim, segment_id(sim, 2))
    assert (status["status"], status["filename"]) == ("FAILED", None)
    assert status["endTime"] is not None
    assert export_until_done(sim, segment_id(sim, 1))["status"] == "COMPLETE"


def test_status_carries_retry_after_when_configured(sim):
    export = trigger(sim, segment_id(sim, 0)).json()
    assert "Retry-After" not in poll(sim, export["exportId"]).headers
    sim.indicative.config.retry_after = "2"
    assert poll(sim, export["exportId"]).headers["Retry-After"] == "2"


# -- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
def test_export_file_matches_truth(sim, gzipped):
    sim.indicative.config.gzip = gzipped
    segment = segment_id(sim, 0)
    status = export_until_done(sim, segment)
    assert status["filename"].endswith(".csv.gz" if gzipped else ".csv")
    answer = requests.get(status["filename"])
    assert answer.status_code == 200
    body = gzip.decompress(answer.content) if gzipped else answer.content
    rows = csv_rows(body)
    assert rows == sim.indicative.member_rows(segment) and len(rows) == 7
    assert list(rows[0])[:4] == ["userId", "email", "firstSeen", "country"]
    cells = [cell for row in rows for cell in row.values()]
    assert "" in cells and any("," in c for c in cells) and any('"' in c for c in cells)
    assert any("\n" in c for c in cells)
    assert requests.get(status["filename"], auth=auth(sim)).content == answer.content


def test_file_is_forbidden_until_the_export_completes(sim):
    export = trigger(sim, segment_id(sim, 0)).json()
    assert requests.get(f"{sim.url}/indicative/files/{export['exportId']}.csv").status_code == 403


def test_rows_per_segment_as_dict_or_function_drives_truth():
    config = IndicativeConfig(segments=3, rows_per_segment={0: 2, 2: 5})
    with Simulator(SimConfig(indicative=config)) as simulator:
        assert simulator.truth()["indicative_segment_members"] == 7
        assert len(simulator.indicative.member_rows(segment_id(simulator, 1))) == 0
    config = IndicativeConfig(segments=3, rows_per_segment=lambda index: 10 * (index + 1))
    with Simulator(SimConfig(indicative=config)) as simulator:
        assert simulator.truth()["indicative_segment_members"] == 60
        status = export_until_done(simulator, segment_id(simulator, 2))
        assert len(csv_rows(requests.get(status["filename"]).content)) == 30


# -- unknown and expired exports -----------------------------------------------------------


def test_unknown_export_is_404(sim):
    assert poll(sim, "8f9fdd71-204c-41e1-a2ab-de7f85002f65").status_code == 404
    assert requests.get(f"{sim.url}/indicative/files/nope.csv").status_code == 403


@pytest.mark.parametrize("how", ["age_export", "advance_clock", "http"])
def test_export_past_48_hours_is_gone(sim, how):
    status = export_until_done(sim, segment_id(sim, 1))
    export_id = status["exportId"]
    if how == "age_export":
        sim.indicative.age_export(export_id, hours=47)
        assert poll(sim, export_id).status_code == 200  # still inside the retention
        sim.indicative.age_export(export_id, hours=2)
    elif how == "advance_clock":
        sim.indicative.advance_clock(hours=49)
    else:
        body = {"exportId": export_id, "hours": 49}
        assert requests.post(f"{sim.url}/_sim/indicative/age", json=body).ok
    assert requests.get(status["filename"]).status_code == 403
    assert poll(sim, export_id).status_code == 404
    fresh = export_until_done(sim, segment_id(sim, 1))  # a new trigger works again
    assert requests.get(fresh["filename"]).status_code == 200


# -- truth, counters, data changes ---------------------------------------------------------


def test_truth_and_counters(sim):
    indicative = {k: v for k, v in sim.truth().items() if k.startswith("indicative_")}
    assert indicative == {
        "indicative_segments": 4,
        "indicative_segment_exports": 4,
        "indicative_segment_members": 28,
    }
    status = export_until_done(sim, segment_id(sim, 0))
    trigger(sim, segment_id(sim, 0))
    assert sim.indicative.trigger_counts()[segment_id(sim, 0)] == 2
    assert sim.indicative.status_polls()[status["exportId"]] == 3
    assert sim.indicative.poll_count() == 3
    assert sim.requests_by_method() == {"POST": 2, "GET": 3}
    stats = requests.get(f"{sim.url}/_sim/indicative/stats").json()
    assert (stats["trigger_count"], stats["poll_count"]) == (2, 3)
    assert requests.get(f"{sim.url}/_sim/truth").json() == sim.truth()


def test_touch_moves_last_run_to_now(sim):
    before = [s["lastRun"] for s in sim.indicative.segments]
    sim.indicative.touch(segment_id(sim, 0))
    answer = requests.post(
        f"{sim.url}/_sim/indicative/touch", json={"segmentId": segment_id(sim, 3)}
    )
    assert answer.ok
    after = [s["lastRun"] for s in requests.get(api(sim, "/list"), auth=auth(sim)).json()]
    assert after[1:3] == before[1:3]
    assert ISO_MILLIS.match(after[0]) and after[0] > before[0]
    assert before[3] is None and ISO_MILLIS.match(after[3])
    missing = requests.post(f"{sim.url}/_sim/indicative/touch", json={"segmentId": "nope"})
    assert missing.status_code == 404


# -- faults --------------------------------------------------------------------------------


def test_status_fault_fires_times_with_retry_after_and_body(sim):
    sim.faults.add(
        "status", vendor="indicative", path="/list", status=429, retry_after="3", times=2
    )
    answers = [requests.get(api(sim, "/list"), auth=auth(sim)) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    sim.faults.add("status", path="/list", status=500, body='{"message": "boom"}')
    assert requests.get(api(sim, "/list"), auth=auth(sim)).json() == {"message": "boom"}


def test_fault_matches_vendor_and_method(sim):
    sim.faults.add("status", vendor="artisan", status=503)
    sim.faults.add("status", method="POST", path="/export", status=503)
    assert requests.get(api(sim, "/list"), auth=auth(sim)).status_code == 200
    assert poll(sim, "x").status_code == 404  # a GET on /export/... is untouched
    assert trigger(sim, segment_id(sim, 0)).status_code == 503
    assert trigger(sim, segment_id(sim, 0)).status_code == 200


@pytest.mark.parametrize("status", [200, 502])
def test_html_fault_answers_an_html_page(sim, status):
    sim.faults.add("html", path="/list", status=status)
    page = requests.get(api(sim, "/list"), auth=auth(sim))
    assert page.status_code == status and page.headers["Content-Type"] == "text/html"
    assert page.text.startswith("<html>")


def test_truncated_json_fault_cuts_the_body(sim):
    full = requests.get(api(sim, "/list"), auth=auth(sim)).content
    sim.faults.add("truncated_json", path="/list")
    cut = requests.get(api(sim, "/list"), auth=auth(sim))
    assert cut.status_code == 200 and full.startswith(cut.content) and len(cut.content) < len(full)
    with pytest.raises(ValueError):
        cut.json()


def test_reset_fault_closes_without_answer(sim):
    sim.faults.add("reset", path="/list")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(api(sim, "/list"), auth=auth(sim))
    assert requests.get(api(sim, "/list"), auth=auth(sim)).ok


def test_delay_fault_answers_late(sim):
    sim.faults.add("delay", path="/list", seconds=0.4)
    started = time.monotonic()
    assert requests.get(api(sim, "/list"), auth=auth(sim)).ok
    assert time.monotonic() - started >= 0.4


def test_cut_download_breaks_a_chunked_file(sim):
    status = export_until_done(sim, segment_id(sim, 2))
    sim.faults.add("cut_download", path="/files/", after_bytes=50)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(status["filename"]).content  # noqa: B018
    assert requests.get(status["filename"]).ok


def test_cut_download_short_reads_a_fixed_length_body(sim):
    sim.faults.add("cut_download", path="/list", after_bytes=40)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # urllib3 IncompleteRead
        requests.get(api(sim, "/list"), auth=auth(sim)).content  # noqa: B018


def test_faults_switched_on_over_http(sim):
    spec = [{"kind": "status", "status": 503, "path": "/list", "times": 2}]
    assert requests.post(f"{sim.url}/_sim/faults", json=spec).ok
    statuses = [requests.get(api(sim, "/list"), auth=auth(sim)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    log = requests.get(f"{sim.url}/_sim/requests").json()
    assert [entry["status"] for entry in log] == statuses
    assert log[0] == {
        "vendor": "indicative",
        "method": "GET",
        "path": "/service/v1/segments/list",
        "query": "",
        "status": 503,
    }


# -- CLI -----------------------------------------------------------------------------------


def test_cli_writes_env_file_serves_and_stops_on_sigterm(tmp_path):
    env_file = tmp_path / "sim.env"
    command = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--env-file"]
    options = ["--scale", "demo", "--rows-per-segment", "11", "--gzip", "--polls-to-complete", "1"]
    process = subprocess.Popen(
        [*command, str(env_file), *options],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert re.fullmatch(r"simulator listening on http://127\.0\.0\.1:\d+\n", line)
        values = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        url = values["SIMULATOR_URL"]
        assert values["TAP_SEGMENTS_INDICATIVE_BASE_URL"] == f"{url}/indicative"
        assert (
            requests.get(f"{url}/_sim/truth", timeout=5).json()["indicative_segment_members"] == 66
        )
        credentials = (
            values["TAP_SEGMENTS_INDICATIVE_API_KEY"],
            values["TAP_SEGMENTS_INDICATIVE_ACCESS_TOKEN"],
        )
        base = values["TAP_SEGMENTS_INDICATIVE_BASE_URL"] + "/service/v1/segments"
        segments = requests.get(f"{base}/list", auth=credentials, timeout=5).json()
        export = requests.post(
            f"{base}/export/", json={"segmentId": segments[0]["segmentId"]}, auth=credentials
        ).json()
        done = requests.get(f"{base}/export/{export['exportId']}", auth=credentials).json()
        assert done["filename"].endswith(".csv.gz")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0
