"""The bad result files and answers of issue 13, each switched on as a fault, served by the
storage (Artisan, Indicative files) or by the vendor's API (Acoustic files)."""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import io
import json
import time
import zlib

import pytest
import requests

from simulator import SimConfig, Simulator, badfiles
from simulator.acoustic import AcousticConfig
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig

ROWS = 40


@pytest.fixture
def sim():
    config = SimConfig(
        seed=21,
        indicative=IndicativeConfig(segments=1, rows_per_segment=ROWS, polls_to_complete=1),
        artisan=ArtisanConfig(apps=1, segments_per_app=1, polls_to_complete=1),
        acoustic=AcousticConfig(jobs_per_category=2),
    )
    with Simulator(config) as simulator:
        yield simulator


def indicative_file(sim: Simulator) -> str:
    config = sim.tap_config()
    auth = (config["indicative_api_key"], config["indicative_access_token"])
    base = config["indicative_base_url"]
    body = {"segmentId": sim.indicative.segments[0]["segmentId"]}
    export = requests.post(f"{base}/service/v1/segments/export/", json=body, auth=auth).json()
    status = requests.get(f"{base}/service/v1/segments/export/{export['exportId']}", auth=auth)
    return status.json()["filename"]


def artisan_file(sim: Simulator) -> str:
    config = sim.tap_config()
    headers = {
        "Authorization": f'Token token="{config["artisan_secret_api_key"]}"',
        "public-api-key": config["artisan_public_api_key"],
    }
    base, app = config["artisan_base_url"], sim.artisan.apps[0]["id"]
    segment = sim.artisan.segments[app][0]["id"]
    job_id = requests.post(f"{base}/public/api/apps/{app}/segments/{segment}", headers=headers)
    job = requests.get(f"{base}/public/api/jobs/{job_id.json()['job_id']}", headers=headers).json()
    return job.get("jobs", job)["result_url"]


def acoustic_file(sim: Simulator) -> tuple[str, dict[str, str]]:
    config = sim.tap_config()
    headers = {"Authorization": f"Bearer {config['acoustic_auth_key']}"}
    job_id, name = sim.acoustic.ready_files()[0]
    return f"{config['acoustic_base_url']}/v1/jobs/{job_id}/segmentDataFiles/{name}", headers


def expected_rows(sim: Simulator) -> list[dict[str, str]]:
    return sim.indicative.member_rows(sim.indicative.segments[0]["segmentId"])


def plain_csv(sim: Simulator) -> bytes:
    return requests.get(indicative_file(sim)).content


def fetch(url: str, **kwargs: object) -> requests.Response:
    answer = requests.get(url, **kwargs)  # type: ignore[arg-type]
    if "Content-Length" in answer.headers and "Content-Encoding" not in answer.headers:
        assert int(answer.headers["Content-Length"]) == len(answer.content)
    return answer


def test_a_cell_over_128_kib(sim):
    sim.faults.add("big_cell", vendor="indicative", path="^/files/", size=200_000, times=5)
    text = fetch(indicative_file(sim)).text
    limit = csv.field_size_limit(badfiles.CSV_FIELD_LIMIT)  # Python's default, whoever set it
    try:
        with pytest.raises(csv.Error, match="field larger than field limit"):
            list(csv.reader(io.StringIO(text)))
        csv.field_size_limit(1 << 24)
        rows = list(csv.DictReader(io.StringIO(text)))
    finally:
        csv.field_size_limit(limit)
    expected = expected_rows(sim)
    assert len(rows) == ROWS and len(rows[0]["userId"]) == 200_000 > badfiles.CSV_FIELD_LIMIT
    assert rows[0]["userId"] == badfiles.big_cell_value(200_000)
    assert {k: v for k, v in rows[0].items() if k != "userId"} == {
        k: v for k, v in expected[0].items() if k != "userId"
    }
    assert rows[1:] == expected[1:]


def test_a_bom_before_csv_and_before_json(sim):
    sim.faults.add("bom", path="^/files/", times=5)
    csv_body = fetch(indicative_file(sim)).content
    assert csv_body.startswith(badfiles.BOM)
    assert list(csv.DictReader(io.StringIO(csv_body.decode("utf-8-sig")))) == expected_rows(sim)
    json_body = fetch(artisan_file(sim)).content
    assert json_body.startswith(badfiles.BOM + b"[")
    app = sim.artisan.apps[0]["id"]
    members = sim.artisan.segment_members(app, sim.artisan.segments[app][0]["id"])
    assert json.loads(json_body.decode("utf-8-sig")) == members


@pytest.mark.parametrize(
    ("encoding", "header", "wbits"),
    [("gzip", "gzip", 31), ("deflate", "deflate", 15), ("deflate-raw", "deflate", -15)],
)
def test_content_encodings(sim, encoding, header, wbits):
    plain = plain_csv(sim)
    sim.faults.add(
        "content_encoding", vendor="indicative", path="^/files/", encoding=encoding, times=5
    )
    url = indicative_file(sim)
    raw = requests.get(url, stream=True)
    assert raw.headers["Content-Encoding"] == header
    packed = raw.raw.read(decode_content=False)
    assert int(raw.headers["Content-Length"]) == len(packed)
    assert zlib.decompress(packed, wbits) == plain
    if encoding == "deflate-raw":
        with pytest.raises(zlib.error):
            zlib.decompress(packed, 15)  # not what RFC 9110's "deflate" (zlib) promises
    assert requests.get(url).content == plain  # what requests decodes itself


def test_duplicate_and_empty_header_names(sim):
    expected = expected_rows(sim)
    sim.faults.add("duplicate_headers", vendor="indicative", path="^/files/")
    text = fetch(indicative_file(sim)).text
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == ["userId", "email", "email", "email_2", "note"]
    assert rows[0] == [expected[0][c] for c in ("userId", "email", "firstSeen", "country", "note")]
    sim.faults.add("empty_header", vendor="indicative", path="^/files/")
    header = next(csv.reader(io.StringIO(fetch(indicative_file(sim)).text)))
    assert header == ["userId", "", "firstSeen", "country", "note"]


def test_a_zero_byte_file(sim):
    sim.faults.add("empty_file", vendor="indicative", path="^/files/")
    answer = fetch(indicative_file(sim))
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["Content-Length"] == "0"


@pytest.mark.parametrize(
    ("kind", "type_", "start"),
    [
        ("proxy_page", "text/html", b"<html>\r\n<head><title>502 Bad Gateway"),
        ("xml_error", "application/xml", b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>'),
    ],
)
def test_error_pages_served_with_200_as_the_file(sim, kind, type_, start):
    sim.faults.add(kind, vendor="indicative", path="^/files/")
    answer = requests.get(indicative_file(sim))
    assert answer.status_code == 200 and answer.headers["Content-Type"] == type_
    assert answer.content.startswith(start)


def test_a_trickling_download_stops_by_itself(sim):
    total = len(plain_csv(sim))
    sim.faults.add(
        "trickle",
        vendor="indicative",
        path="^/files/",
        tick_bytes=16,
        tick_seconds=0.05,
        for_seconds=0.6,
    )
    started = time.monotonic()
    received = 0
    url = indicative_file(sim)
    answer = requests.get(url, stream=True, timeout=0.5)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for piece in answer.iter_content(16):
            received += len(piece)  # each bit arrives well within the read timeout
    elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 3 and 0 < received < total


def test_faults_combine_with_ranges_on_storage(sim):
    size = len(plain_csv(sim))
    sim.faults.add("bom", vendor="indicative", path="^/files/")
    head = requests.get(indicative_file(sim), headers={"Range": "bytes=0-3"})
    assert head.status_code == 206 and head.content == badfiles.BOM + b"u"
    assert head.headers["Content-Range"] == f"bytes 0-3/{size + 3}"


def test_acoustic_files_on_its_api_take_the_same_faults(sim):
    url, headers = acoustic_file(sim)
    plain = requests.get(url, headers=headers).content
    sim.faults.add("bom", vendor="acoustic", path="/segmentDataFiles/")
    assert requests.get(url, headers=headers).content == badfiles.BOM + plain
    sim.faults.add("duplicate_headers", vendor="acoustic", path="/segmentDataFiles/")
    first_line = requests.get(url, headers=headers).text.split("\n", 1)[0]
    assert first_line == "email,email,email_2"
    sim.faults.add("content_encoding", vendor="acoustic", encoding="deflate-raw")
    answer = requests.get(url, headers=headers)
    assert answer.headers["Content-Encoding"] == "deflate" and answer.content == plain
    sim.faults.add("empty_file", vendor="acoustic")
    assert requests.get(url, headers=headers).content == b""
    sim.faults.add("xml_error", vendor="acoustic", path="/segmentDataFiles/")
    assert requests.get(url, headers=headers).content == badfiles.S3_ERROR_DOCUMENT


def test_retry_after_as_a_date_with_a_skewed_server_clock(sim):
    config = sim.tap_config()
    sim.faults.add(
        "status", vendor="indicative", path="/list", status=429, retry_after_date=3, date_skew=-900
    )
    auth = (config["indicative_api_key"], config["indicative_access_token"])
    answer = requests.get(f"{config['indicative_base_url']}/service/v1/segments/list", auth=auth)
    assert answer.status_code == 429
    server = email.utils.parsedate_to_datetime(answer.headers["Date"])
    retry = email.utils.parsedate_to_datetime(answer.headers["Retry-After"])
    assert (retry - server).total_seconds() == 3
    skew = (server - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert -905 < skew < -895


def test_unknown_fault_options_are_refused():
    with pytest.raises(ValueError, match="encoding"):
        Simulator().faults.add("content_encoding", encoding="br")
