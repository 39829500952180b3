"""The simulator itself: documented Indicative behaviour, faults, control endpoints, CLI."""

from __future__ import annotations

import csv
import gzip
import io
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from singer_output import REPO

from simulator import SimConfig, Simulator, data
from simulator.indicative import IndicativeConfig


@pytest.fixture
def sim():
    with Simulator(
        SimConfig(seed=3, indicative=IndicativeConfig(segments=3, rows_per_segment=7))
    ) as s:
        yield s


def auth(sim: Simulator) -> tuple[str, str]:
    config = sim.tap_config()
    return config["indicative_api_key"], config["indicative_access_token"]


def test_basic_auth_is_required(sim):
    url = f"{sim.base_url('indicative')}/service/v1/segments/list"
    assert requests.get(url).status_code == 401
    assert requests.get(url, auth=("wrong", "creds")).status_code == 401
    assert requests.get(url, auth=auth(sim)).status_code == 200


def test_segments_have_every_documented_field(sim):
    url = f"{sim.base_url('indicative')}/service/v1/segments/list"
    segments = requests.get(url, auth=auth(sim)).json()
    assert len(segments) == 3
    fields = {"segmentId", "name", "description", "category", "projectId", "type", "lastRun"}
    assert all(set(s) == fields for s in segments)


def export_until_complete(sim: Simulator, segment_id: str) -> dict:
    base = sim.base_url("indicative")
    export = requests.post(
        f"{base}/service/v1/segments/export/",
        json={"segmentId": segment_id, "outputFormat": "csv"},
        auth=auth(sim),
    ).json()
    assert export["status"] == "PENDING" and export["filename"] is None
    statuses = []
    for _ in range(10):
        status = requests.get(
            f"{base}/service/v1/segments/export/{export['exportId']}", auth=auth(sim)
        ).json()
        statuses.append(status["status"])
        if status["status"] == "COMPLETE":
            break
    assert statuses == ["PENDING", "PENDING", "COMPLETE"]  # polls_to_complete = 3
    return status


@pytest.mark.parametrize("gzipped", [False, True])
def test_export_file_matches_truth(sim, gzipped):
    sim.indicative.config.gzip = gzipped
    segment_id = sim.indicative.segments[0]["segmentId"]
    status = export_until_complete(sim, segment_id)
    body = requests.get(status["filename"]).content
    text = (gzip.decompress(body) if gzipped else body).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == sim.indicative.member_rows(segment_id)
    assert sim.indicative.trigger_counts()[segment_id] == 1


def test_unknown_and_expired_exports(sim):
    base = sim.base_url("indicative")
    assert (
        requests.get(f"{base}/service/v1/segments/export/nope", auth=auth(sim)).status_code == 404
    )
    status = export_until_complete(sim, sim.indicative.segments[1]["segmentId"])
    sim.indicative.age_export(status["exportId"], hours=49)
    assert requests.get(status["filename"]).status_code == 403
    url = f"{base}/service/v1/segments/export/{status['exportId']}"
    assert requests.get(url, auth=auth(sim)).status_code == 404


def test_faults_fire_the_given_number_of_times(sim):
    url = f"{sim.base_url('indicative')}/service/v1/segments/list"
    sim.faults.add(
        "status", vendor="indicative", path="/list", status=429, retry_after="3", times=2
    )
    answers = [requests.get(url, auth=auth(sim)) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    sim.faults.add("html", path="/list", status=502)
    page = requests.get(url, auth=auth(sim))
    assert page.status_code == 502 and page.text.startswith("<html>")
    sim.faults.add("truncated_json", path="/list")
    with pytest.raises(ValueError):
        requests.get(url, auth=auth(sim)).json()
    sim.faults.add("reset", path="/list")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, auth=auth(sim))


def test_cut_download_breaks_the_body(sim):
    status = export_until_complete(sim, sim.indicative.segments[2]["segmentId"])
    sim.faults.add("cut_download", path="/files/", after_bytes=50)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(status["filename"]).content  # noqa: B018


def test_control_endpoints(sim):
    assert requests.get(f"{sim.url}/_sim/truth").json()["indicative_segment_members"] == 21
    requests.post(f"{sim.url}/_sim/faults", json={"kind": "status", "status": 503, "path": "/list"})
    url = f"{sim.base_url('indicative')}/service/v1/segments/list"
    assert requests.get(url, auth=auth(sim)).status_code == 503
    log = requests.get(f"{sim.url}/_sim/requests").json()
    assert log[-1]["status"] == 503 and log[-1]["method"] == "GET"


def test_cli_writes_env_file_and_stops_on_sigterm(tmp_path):
    env_file = tmp_path / "sim.env"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--env-file", str(env_file)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("simulator listening on http://127.0.0.1:")
        values = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        assert "TAP_SEGMENTS_INDICATIVE_API_KEY" in values
        assert requests.get(f"{values['SIMULATOR_URL']}/_sim/truth", timeout=5).ok
        storage = values["SIMULATOR_STORAGE_URL"]
        assert storage.startswith("http://127.0.0.1:") and storage != values["SIMULATOR_URL"]
        assert requests.get(f"{storage}/any/key", timeout=5).status_code == 403
        control = f"{values['SIMULATOR_URL']}/_sim/storage"
        assert requests.get(f"{control}/requests", timeout=5).json()[0]["path"] == "/any/key"
    finally:
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert process.returncode == 0


def test_bulk_csv_is_byte_for_byte_the_reference_writer():
    rows = (data.member_row(9, "seg", i) for i in range(3000))
    reference = b"".join(data.csv_chunks(data.MEMBER_COLUMNS, rows))
    assert b"".join(data.member_csv_chunks(9, "seg", 3000)) == reference


def test_range_request_gets_only_the_first_bytes(sim):
    status = export_until_complete(sim, sim.indicative.segments[0]["segmentId"])
    answer = requests.get(status["filename"], headers={"Range": "bytes=0-0"})
    assert answer.status_code == 206 and answer.content == b"u"
