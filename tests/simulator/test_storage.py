"""The simulator's S3-like storage, driven with plain ``requests`` as any HTTP client would.

Presigned URLs only (403 without, with a bad signature, after expiry on the storage's own
clock), 400 InvalidArgument when an ``Authorization`` header comes along, byte ranges, HEAD,
redirects, the request log and its credential-leak detector, streaming in bounded memory,
and the vendors' result files living there (or in moto's S3 for ``s3://`` filenames).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import tracemalloc
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from simulator import SimConfig, Simulator, data
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.s3 import MotoS3
from simulator.storage import parse_range

BODY = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def sim():
    config = SimConfig(
        seed=4,
        indicative=IndicativeConfig(segments=2, rows_per_segment=30, polls_to_complete=1),
        artisan=ArtisanConfig(apps=1, segments_per_app=1, polls_to_complete=1),
    )
    with Simulator(config) as simulator:
        yield simulator


@pytest.fixture
def url(sim):
    sim.storage.put("bucket", "dir/object.bin", BODY, vendor="test")
    return sim.storage.presign("bucket", "dir/object.bin")


def error_of(response: requests.Response) -> dict[str, str]:
    assert response.headers["Content-Type"] == "application/xml"
    root = ET.fromstring(response.content)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def with_query(url: str, **changes: str) -> str:
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()} | changes
    encoded = "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in query.items())
    return f"{split.scheme}://{split.netloc}{split.path}?{encoded}"


# -- presigned URLs --------------------------------------------------------------------------


def test_a_presigned_url_serves_the_object_with_s3_headers(sim, url):
    assert url.startswith(sim.storage_url + "/bucket/dir/object.bin?X-Amz-Algorithm=")
    query = parse_qs(urlsplit(url).query)
    assert set(query) == {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    }
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/s3/aws4_request")
    answer = requests.get(url)
    assert answer.status_code == 200 and answer.content == BODY
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["Content-Length"] == str(len(BODY))
    assert answer.headers["ETag"].startswith('"') and answer.headers["Last-Modified"]
    assert sim.storage_url != sim.url  # another origin than the vendor API


def test_without_a_signature_access_is_denied(sim, url):
    bare = url.split("?", 1)[0]
    answer = requests.get(bare)
    assert answer.status_code == 403 and error_of(answer)["Code"] == "AccessDenied"


@pytest.mark.parametrize(
    "change",
    [
        {"X-Amz-Signature": "0" * 64},
        {"X-Amz-Expires": "7200"},  # a longer life than was signed
        {"extra": "1"},  # every query parameter is signed
    ],
)
def test_a_tampered_url_does_not_match_its_signature(url, change):
    answer = requests.get(with_query(url, **change))
    assert answer.status_code == 403
    assert error_of(answer)["Code"] == "SignatureDoesNotMatch"


def test_a_signature_is_for_one_object_one_method_and_one_host(sim, url):
    sim.storage.put("bucket", "dir/other.bin", b"other")
    other = url.replace("/dir/object.bin?", "/dir/other.bin?")
    assert error_of(requests.get(other))["Code"] == "SignatureDoesNotMatch"
    assert requests.head(url).status_code == 403  # signed for GET
    assert requests.head(sim.storage.presign("bucket", "dir/object.bin", method="HEAD")).ok
    second_origin = url.replace(sim.storage.origins[0], sim.storage.origins[1])
    assert error_of(requests.get(second_origin))["Code"] == "SignatureDoesNotMatch"


def test_missing_or_malformed_auth_parameters(url):
    query = parse_qs(urlsplit(url).query)
    without_date = url.replace(f"X-Amz-Date={query['X-Amz-Date'][0]}&", "")
    answer = requests.get(without_date)
    assert answer.status_code == 400
    assert error_of(answer)["Code"] == "AuthorizationQueryParametersError"
    week = requests.get(with_query(url, **{"X-Amz-Expires": "604801"}))
    assert week.status_code == 400 and "less than a week" in error_of(week)["Message"]


def test_expiry_follows_the_storage_clock_on_any_date(sim):
    sim.storage.put("bucket", "k", b"data")
    sim.storage.clock.set(dt.datetime(2027, 8, 1, 23, 59, 30, tzinfo=dt.timezone.utc))
    url = sim.storage.presign("bucket", "k", expires=60)
    assert "X-Amz-Date=20270801T235930Z" in url
    sim.storage.clock.advance(60)
    assert requests.get(url).status_code == 200  # the last second it is valid, next day
    sim.storage.clock.advance(1)
    answer = requests.get(url)
    assert answer.status_code == 403
    details = error_of(answer)
    assert (details["Code"], details["Message"]) == ("AccessDenied", "Request has expired")
    assert details["X-Amz-Expires"] == "60"
    assert details["Expires"] == "2027-08-02T00:00:30Z"
    assert details["ServerTime"] == "2027-08-02T00:00:31Z"


def test_a_url_signed_in_the_future_is_not_yet_valid(sim):
    sim.storage.put("bucket", "k", b"data")
    url = sim.storage.presign("bucket", "k")
    sim.storage.clock.advance(-120)
    answer = requests.get(url)
    assert answer.status_code == 403 and error_of(answer)["Message"] == "Request is not yet valid"


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"key:token").decode(),
        'Token token="secret"',
        "Bearer abc",
    ],
)
def test_an_authorization_header_with_a_presigned_url_is_a_400(url, authorization):
    answer = requests.get(url, headers={"Authorization": authorization})
    assert answer.status_code == 400
    details = error_of(answer)
    assert details["Code"] == "InvalidArgument"
    assert details["Message"] == (
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
        "Signature query string parameter or the Authorization header should be specified"
    )
    # S3 echoes the header back: a client that prints error bodies must scrub them.
    assert (details["ArgumentName"], details["ArgumentValue"]) == ("Authorization", authorization)


def test_other_authorization_without_a_presigned_url(url):
    bare = url.split("?", 1)[0]
    answer = requests.get(bare, auth=("key", "token"))
    assert answer.status_code == 400
    assert error_of(answer)["Message"] == "Unsupported Authorization Type"


def test_missing_keys_answer_403_or_404(sim):
    url = sim.storage.presign("bucket", "nothing-here")
    assert error_of(requests.get(url))["Code"] == "AccessDenied"
    sim.storage.config.missing_key_status = 404
    answer = requests.get(url)
    assert answer.status_code == 404 and error_of(answer)["Code"] == "NoSuchKey"


def test_only_get_and_head(sim, url):
    answer = requests.put(url, data=b"x")
    assert answer.status_code == 405 and error_of(answer)["Code"] == "MethodNotAllowed"


# -- ranges and HEAD --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-99999", 10200, 10239),  # clamped to the end
        ("bytes=-99999", 0, 10239),
    ],
)
def test_ranges(url, header, first, last):
    answer = requests.get(url, headers={"Range": header})
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == f"bytes {first}-{last}/{len(BODY)}"
    assert answer.headers["Content-Length"] == str(last - first + 1)
    assert answer.content == BODY[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-20010", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(url, header):
    answer = requests.get(url, headers={"Range": header})
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == "bytes */10240"
    assert error_of(answer)["Code"] == "InvalidRange"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-2", "items=0-1", "bytes=x-"])
def test_several_or_invalid_ranges_serve_the_whole_object(url, header):
    answer = requests.get(url, headers={"Range": header})
    assert answer.status_code == 200 and answer.content == BODY


def test_any_range_of_an_empty_object_is_416(sim):
    sim.storage.put("bucket", "empty", b"")
    url = sim.storage.presign("bucket", "empty")
    assert requests.get(url).content == b""
    assert requests.get(url, headers={"Range": "bytes=0-0"}).status_code == 416


def test_head_gives_the_headers_without_the_body(sim):
    sim.storage.put("bucket", "k", BODY)
    url = sim.storage.presign("bucket", "k", method="HEAD")
    answer = requests.head(url)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["Content-Length"] == str(len(BODY))
    assert answer.headers["Accept-Ranges"] == "bytes"


def test_parse_range_edge_cases():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-", 0) == "unsatisfiable"
    assert parse_range("bytes=-5", 3) == (0, 2)
    assert parse_range("bytes=3-3", 4) == (3, 3)


def test_a_generated_object_is_ranged_by_generating_and_skipping(sim):
    rows = 20_000
    sim.storage.put(
        "bucket",
        "members.csv",
        lambda: data.member_csv_chunks(4, "scope", rows),
        size=data.member_csv_size(4, "scope", rows),
    )
    whole = b"".join(data.member_csv_chunks(4, "scope", rows))
    url = sim.storage.presign("bucket", "members.csv")
    assert requests.get(url).content == whole
    middle = requests.get(url, headers={"Range": "bytes=500000-500999"})
    assert middle.content == whole[500000:501000]
    tail = requests.get(url, headers={"Range": "bytes=-100"})
    assert tail.content == whole[-100:]


def test_a_large_generated_object_streams_in_bounded_memory(sim):
    megabyte = 1 << 20
    count = 256

    def chunks():
        for index in range(count):
            yield bytes([index % 256]) * megabyte

    sim.storage.put("bucket", "big.bin", chunks, size=count * megabyte)
    url = sim.storage.presign("bucket", "big.bin")
    tracemalloc.start()
    try:
        received = 0
        with requests.get(url, stream=True) as answer:
            for piece in answer.iter_content(1 << 16):
                received += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert received == count * megabyte
    assert peak < 16 * megabyte, f"peak {peak / megabyte:.1f} MiB for a 256 MiB object"


# -- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["same", "other"])
def test_a_redirect_to_a_fresh_presigned_url(sim, url, where):
    sim.storage.config.redirect = where
    first = requests.get(url, allow_redirects=False)
    assert first.status_code == 302
    location = first.headers["Location"]
    origin = sim.storage.origins[0 if where == "same" else 1]
    assert location.startswith(f"{origin}/bucket/dir/object.bin?") and "X-Amz-Signature" in location
    followed = requests.get(url)
    assert followed.status_code == 200 and followed.content == BODY
    assert [r.status_code for r in followed.history] == [302]
    assert [entry.origin for entry in sim.storage.requests[-2:]] == [sim.storage.origins[0], origin]


def test_a_redirect_fault_fires_once_and_can_say_307(sim, url):
    sim.storage.config.redirect_status = 307
    sim.faults.add("redirect", vendor="test", to="other")
    assert requests.get(url, allow_redirects=False).status_code == 307
    assert requests.get(url, allow_redirects=False).status_code == 200


def test_a_redirect_loop_never_reaches_the_object(sim, url):
    sim.faults.add("redirect_loop", vendor="storage", path="^/bucket/", times=1000)
    with pytest.raises(requests.TooManyRedirects):
        requests.get(url)
    assert len(sim.storage.requests) > 30
    sim.faults.clear()
    sim.storage.config.redirect = "loop"
    with pytest.raises(requests.TooManyRedirects):
        requests.get(url)


# -- the request log and credential leaks ----------------------------------------------------


def test_every_request_is_recorded_with_every_header(sim, url):
    requests.get(url, headers={"X-Custom": "one", "Range": "bytes=0-1"})
    requests.get(url.split("?")[0])
    first, second = sim.storage.requests
    assert (first.method, first.path, first.status) == ("GET", "/bucket/dir/object.bin", 206)
    assert first.query == urlsplit(url).query
    assert first.header("x-custom") == "one" and first.header("Range") == "bytes=0-1"
    assert first.header("Host") == urlsplit(url).netloc
    assert (second.status, second.query) == (403, "")


def test_the_leak_detector_finds_credentials_in_any_form(sim, url):
    key, token = sim.tap_config()["indicative_api_key"], sim.tap_config()["indicative_access_token"]
    secret = sim.tap_config()["artisan_secret_api_key"]
    bare = url.split("?")[0]
    sends = [
        ({"Authorization": "Basic " + base64.b64encode(f"{key}:{token}".encode()).decode()}, bare),
        ({"Authorization": f'Token token="{secret}"'}, url),
        ({"public-api-key": "anything at all"}, url),
        ({"X-Forwarded-Auth": base64.b64encode(f"{key}:{token}".encode()).decode()}, url),
        ({"X-Trace": f"Bearer {sim.tap_config()['kissmetrics_api_token']}"}, url),
        ({}, f"{url}&token={requests.utils.quote(token, safe='')}"),
    ]
    for headers, target in sends:
        requests.get(target, headers=headers)
    requests.get(url)  # clean
    leaks = sim.storage.credential_leaks()
    assert len(leaks) == len(sends)
    assert "header Authorization" in leaks[0].reasons
    assert any("Basic pair" in reason for reason in leaks[0].reasons)
    assert any("public-api-key" in reason for reason in leaks[2].reasons)
    assert any(
        "Basic pair" in reason and "X-Forwarded-Auth" in reason for reason in leaks[3].reasons
    )
    assert any("in query" in reason for reason in leaks[5].reasons)
    assert all(token not in reason and secret not in reason for x in leaks for reason in x.reasons)
    headers_alone = sim.storage.credential_leaks(["not-used-anywhere"])
    assert [leak.request for leak in headers_alone] == [leak.request for leak in leaks[:3]]


def test_control_endpoints_give_requests_leaks_clock_and_switches(sim, url):
    requests.get(url, headers={"Authorization": "Bearer x"})
    control = f"{sim.url}/_sim/storage"
    logged = requests.get(f"{control}/requests").json()
    assert logged[0]["status"] == 400
    assert ["Authorization", "Bearer x"] in logged[0]["headers"]
    leaks = requests.get(f"{control}/leaks").json()
    assert len(leaks) == 1 and leaks[0]["reasons"] == ["header Authorization"]
    assert (
        requests.get(f"{control}/leaks", params={"secret": "Bearer x"})
        .json()[0]["reasons"][-1]
        .startswith("secret Bea")
    )
    requests.post(f"{control}/clock", json={"advance_seconds": 7200})
    assert error_of(requests.get(url))["Message"] == "Request has expired"
    assert requests.post(f"{control}/config", json={"redirect": "other"}).json()["redirect"] == (
        "other"
    )
    assert requests.post(f"{control}/config", json={"nope": 1}).status_code == 400
    requests.post(f"{control}/reset-log")
    assert requests.get(f"{control}/requests").json() == []


# -- the vendors' result files ----------------------------------------------------------------


def indicative_export(sim: Simulator, segment: int = 0) -> dict:
    base = sim.base_url("indicative")
    auth = (sim.tap_config()["indicative_api_key"], sim.tap_config()["indicative_access_token"])
    segment_id = sim.indicative.segments[segment]["segmentId"]
    export = requests.post(
        f"{base}/service/v1/segments/export/", json={"segmentId": segment_id}, auth=auth
    ).json()
    return requests.get(f"{base}/service/v1/segments/export/{export['exportId']}", auth=auth).json()


def test_indicative_files_are_presigned_urls_on_storage(sim):
    status = indicative_export(sim)
    assert status["status"] == "COMPLETE"
    filename = status["filename"]
    assert filename.startswith(f"{sim.storage_url}/upload-bucket/path/to/{status['exportId']}.csv?")
    rows = list(csv.DictReader(io.StringIO(requests.get(filename).text)))
    assert rows == sim.indicative.member_rows(status["segment"]["segmentId"])
    auth = (sim.tap_config()["indicative_api_key"], sim.tap_config()["indicative_access_token"])
    assert requests.get(filename, auth=auth).status_code == 400  # Basic auth + presigned
    old = f"{sim.base_url('indicative')}/files/{status['exportId']}.csv"
    assert requests.get(old, auth=auth).status_code == 404  # no files on the API any more


def test_artisan_result_urls_are_presigned_urls_on_storage(sim):
    config = sim.tap_config()
    headers = {
        "Authorization": f'Token token="{config["artisan_secret_api_key"]}"',
        "public-api-key": config["artisan_public_api_key"],
    }
    base = sim.base_url("artisan")
    app = sim.artisan.apps[0]["id"]
    segment = sim.artisan.segments[app][0]["id"]
    job_id = requests.post(f"{base}/public/api/apps/{app}/segments/{segment}", headers=headers)
    job = requests.get(f"{base}/public/api/jobs/{job_id.json()['job_id']}", headers=headers).json()
    job = job.get("jobs", job)
    assert job["result_url"].startswith(f"{sim.storage_url}/artisan-exports/jobs/")
    assert requests.get(job["result_url"]).json() == sim.artisan.segment_members(app, segment)
    assert requests.get(job["result_url"], headers=headers).status_code == 400
    assert [leak.request.status for leak in sim.storage.credential_leaks()] == [400]


def test_file_faults_still_match_the_vendor_and_its_files_path(sim):
    status = indicative_export(sim)
    sim.faults.add("status", vendor="indicative", path="^/files/", status=503)
    assert requests.get(status["filename"]).status_code == 503
    assert requests.get(status["filename"]).status_code == 200


def test_indicative_s3_filenames_point_into_a_real_s3_api():
    with MotoS3() as s3:
        config = SimConfig(
            seed=4,
            indicative=IndicativeConfig(
                segments=1,
                rows_per_segment=25,
                polls_to_complete=1,
                filename_style="s3",
                s3_endpoint_url=s3.endpoint_url,
            ),
        )
        with Simulator(config) as sim:
            status = indicative_export(sim)
            key = f"path/to/{status['exportId']}.csv"
            assert status["filename"] == f"s3://upload-bucket/{key}"
            body = s3.client().get_object(Bucket="upload-bucket", Key=key)["Body"].read()
            rows = list(csv.DictReader(io.StringIO(body.decode())))
            assert rows == sim.indicative.member_rows(status["segment"]["segmentId"])
            sim.indicative.age_export(status["exportId"], hours=49)
            listed = s3.client().list_objects_v2(Bucket="upload-bucket").get("Contents", [])
            assert listed == []
            assert sim.storage.requests == []
