"""The simulator's shared machinery: control endpoints, request log, fault specs, data, Range.

Vendor behaviour is in ``test_<vendor>_sim.py`` beside this file.
"""

from __future__ import annotations

import pytest
import requests

from simulator import SimConfig, Simulator, data
from simulator.indicative import IndicativeConfig


@pytest.fixture
def sim():
    with Simulator(
        SimConfig(seed=3, indicative=IndicativeConfig(segments=3, rows_per_segment=7))
    ) as s:
        yield s


def list_url(sim: Simulator) -> str:
    return f"{sim.base_url('indicative')}/service/v1/segments/list"


def auth(sim: Simulator) -> tuple[str, str]:
    config = sim.tap_config()
    return config["indicative_api_key"], config["indicative_access_token"]


def export_until_complete(sim: Simulator, segment_id: str) -> dict:
    base = sim.base_url("indicative")
    export = requests.post(
        f"{base}/service/v1/segments/export/", json={"segmentId": segment_id}, auth=auth(sim)
    ).json()
    url = f"{base}/service/v1/segments/export/{export['exportId']}"
    for _ in range(10):
        status = requests.get(url, auth=auth(sim)).json()
        if status["status"] == "COMPLETE":
            return status
    raise AssertionError("export never completed")


def test_control_endpoints(sim):
    assert requests.get(f"{sim.url}/_sim/truth").json()["indicative_segment_members"] == 21
    requests.post(f"{sim.url}/_sim/faults", json={"kind": "status", "status": 503, "path": "/list"})
    assert requests.get(list_url(sim), auth=auth(sim)).status_code == 503
    log = requests.get(f"{sim.url}/_sim/requests").json()
    assert log[-1]["status"] == 503 and log[-1]["method"] == "GET"
    assert requests.post(f"{sim.url}/_sim/reset-log").ok
    assert requests.get(f"{sim.url}/_sim/requests").json() == []


def test_fault_specs_are_listed_cleared_and_checked(sim):
    faults = f"{sim.url}/_sim/faults"
    requests.post(faults, json={"kind": "delay", "seconds": 0.01, "times": 5})
    assert [(f["kind"], f["times"], f["fired"]) for f in requests.get(faults).json()] == [
        ("delay", 5, 0)
    ]
    assert requests.delete(faults).json() == []
    assert sim.faults.list() == []
    assert requests.post(faults, json={"kind": "explode"}).status_code == 400
    assert requests.post(faults, json={"kind": "status", "colour": "red"}).status_code == 400
    assert requests.post(faults, data=b"{oops").status_code == 400
    assert requests.post(faults, json={"status": 500}).status_code == 400


def test_every_vendor_request_is_logged_with_its_query(sim):
    requests.get(list_url(sim) + "?a=1&b=2", auth=auth(sim))
    requests.get(f"{sim.url}/nobody/here?x=1")
    assert [(e.vendor, e.method, e.path, e.query, e.status) for e in sim.requests] == [
        ("indicative", "GET", "/service/v1/segments/list", "a=1&b=2", 200),
        ("", "GET", "/nobody/here", "x=1", 404),
    ]


def test_bulk_csv_is_byte_for_byte_the_reference_writer():
    rows = (data.member_row(9, "seg", i) for i in range(3000))
    reference = b"".join(data.csv_chunks(data.MEMBER_COLUMNS, rows))
    assert b"".join(data.member_csv_chunks(9, "seg", 3000)) == reference


def test_files_are_generated_lazily():
    chunks = data.member_csv_chunks(1, "big", 3_000_000)
    header, first = next(chunks), next(chunks)
    assert header.startswith(b"userId,") and first.count(b"\n") >= data.CHUNK_ROWS
    gz = data.gzip_chunks(data.member_csv_chunks(1, "big", 3_000_000))
    assert next(gz)[:2] == b"\x1f\x8b"


def test_range_request_gets_only_the_first_bytes(sim):
    status = export_until_complete(sim, sim.indicative.segments[0]["segmentId"])
    answer = requests.get(status["filename"], headers={"Range": "bytes=0-0"})
    assert answer.status_code == 206 and answer.content == b"u"
