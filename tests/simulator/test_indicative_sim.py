"""The simulated Indicative API: documented shapes, export lifecycle, files on the S3-like
storage, Indicative's clock and the 48-hour retention, counters, control endpoints, faults, CLI.

Everything is checked with plain ``requests``, as a client that knows only the vendor doc:
the API with Basic auth, the export files through the presigned URL ``filename`` gives.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import gzip
import io
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig

REPO = Path(__file__).resolve().parents[2]
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SEGMENT_FIELDS = {"segmentId", "name", "description", "category", "projectId", "type", "lastRun"}
EXPORT_FIELDS = {"exportId", "segment", "status", "projectId", "startTime", "endTime", "filename"}
PRESIGN_PARAMS = {
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
}


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


def control(sim: Simulator, path: str, body: object = None) -> requests.Response:
    url = f"{sim.url}/_sim/indicative{path}"
    return requests.get(url) if body is None else requests.post(url, json=body)


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


def moment(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def s3_error(answer: requests.Response) -> tuple[int, str, str]:
    """Status, ``<Code>`` and ``<Message>`` of S3's XML error answer."""
    assert answer.headers["Content-Type"] == "application/xml"
    root = ET.fromstring(answer.content)
    assert root.tag == "Error"
    return answer.status_code, root.findtext("Code", ""), root.findtext("Message", "")


def file_key(export_id: str, gzipped: bool = False) -> str:
    """Where the doc's example puts the file (indicative-segments-export.md:101)."""
    return f"path/to/{export_id}.csv" + (".gz" if gzipped else "")


def stored(sim: Simulator, export_id: str) -> bool:
    return any(export_id in key for _, key in sim.storage.objects)


# -- auth and documented shapes ------------------------------------------------------------


def test_basic_auth_is_required_on_every_api_endpoint(sim):
    export = trigger(sim, segment_id(sim, 0))
    assert export.status_code == 200
    status_path = f"/export/{export.json()['exportId']}"
    for credentials in (None, ("wrong", "creds"), (auth(sim)[0], "wrong-token")):
        answer = requests.get(api(sim, "/list"), auth=credentials)
        assert answer.status_code == 401
        assert "error" in answer.json()
        assert requests.get(api(sim, status_path), auth=credentials).status_code == 401
        body = {"segmentId": segment_id(sim, 0)}
        assert requests.post(api(sim, "/export/"), json=body, auth=credentials).status_code == 401
    assert requests.get(api(sim, "/list"), auth=auth(sim)).status_code == 200
    assert poll(sim, export.json()["exportId"]).status_code == 200
    assert sim.indicative.trigger_count() == 1  # refused triggers start nothing


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
    assert [a["filename"] for a in answers[:2]] == [None, None]
    done = answers[-1]
    assert ISO_MILLIS.match(done["endTime"]) and done["startTime"] == export["startTime"]
    assert moment(done["endTime"]) >= moment(done["startTime"])
    # The file is on the storage, another origin than the API, behind a presigned URL.
    url = urlsplit(done["filename"])
    assert f"{url.scheme}://{url.netloc}" == sim.storage_url != sim.url
    assert url.path == f"/upload-bucket/{file_key(export['exportId'])}"
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert set(query) == PRESIGN_PARAMS
    assert (query["X-Amz-Algorithm"], query["X-Amz-Expires"]) == ("AWS4-HMAC-SHA256", "3600")
    assert stored(sim, export["exportId"])


def test_export_accepts_the_path_without_trailing_slash_and_refuses_bad_bodies(sim):
    assert trigger(sim, segment_id(sim, 1), path="/export").json()["status"] == "PENDING"
    assert trigger(sim, "no-such-segment").status_code == 404
    bad = requests.post(api(sim, "/export/"), data=b"{not json", auth=auth(sim))
    assert bad.status_code == 400
    for body in ({}, [segment_id(sim, 1)], {"segmentId": 1}, {"segmentId": ""}):
        assert requests.post(api(sim, "/export/"), json=body, auth=auth(sim)).status_code == 400
    assert sim.indicative.trigger_count() == 1


def test_export_done_after_wall_time_when_export_seconds_is_set(sim):
    sim.indicative.config.export_seconds = 0.3
    export = trigger(sim, segment_id(sim, 0)).json()
    assert [poll(sim, export["exportId"]).json()["status"] for _ in range(5)] == ["PENDING"] * 5
    time.sleep(0.35)
    done = poll(sim, export["exportId"]).json()
    assert done["status"] == "COMPLETE"
    # endTime is when it finished, not when it was read.
    assert moment(done["endTime"]) - moment(done["startTime"]) == dt.timedelta(seconds=0.3)


def test_export_seconds_run_on_indicatives_clock(sim):
    sim.indicative.config.export_seconds = 3600
    export = trigger(sim, segment_id(sim, 0)).json()
    assert poll(sim, export["exportId"]).json()["status"] == "PENDING"
    sim.indicative.advance_clock(hours=1.01)
    done = poll(sim, export["exportId"]).json()
    assert done["status"] == "COMPLETE"
    assert requests.get(done["filename"]).status_code == 200


@pytest.mark.parametrize("which", ["index", "segmentId"])
def test_configured_segments_end_failed_without_a_file(sim, which):
    sim.indicative.config.fail_segments = {2 if which == "index" else segment_id(sim, 2)}
    status = export_until_done(sim, segment_id(sim, 2))
    assert (status["status"], status["filename"]) == ("FAILED", None)
    assert status["endTime"] is not None
    assert not stored(sim, status["exportId"])
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
    assert urlsplit(status["filename"]).path.endswith(".csv.gz" if gzipped else ".csv")
    answer = requests.get(status["filename"])
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == ("application/gzip" if gzipped else "text/csv")
    body = gzip.decompress(answer.content) if gzipped else answer.content
    rows = csv_rows(body)
    assert rows == sim.indicative.member_rows(segment) and len(rows) == 7
    assert list(rows[0])[:4] == ["userId", "email", "firstSeen", "country"]
    cells = [cell for row in rows for cell in row.values()]
    assert "" in cells and any("," in c for c in cells) and any('"' in c for c in cells)
    assert any("\n" in c for c in cells)
    # Each status read signs a fresh URL of the same file.
    again = poll(sim, status["exportId"]).json()["filename"]
    assert urlsplit(again).path == urlsplit(status["filename"]).path
    assert requests.get(again).content == answer.content
    # The API's credentials have no business on the storage: S3 refuses two auth mechanisms.
    with_basic = requests.get(status["filename"], auth=auth(sim))
    assert s3_error(with_basic)[:2] == (400, "InvalidArgument")


def test_file_is_forbidden_until_the_export_completes(sim):
    export = trigger(sim, segment_id(sim, 0)).json()
    url = sim.storage.presign("upload-bucket", file_key(export["exportId"]))
    assert s3_error(requests.get(url)) == (403, "AccessDenied", "Access Denied")
    done = export_until_done_from(sim, export["exportId"])
    assert urlsplit(done["filename"]).path == urlsplit(url).path
    assert requests.get(url).status_code == 200


def export_until_done_from(sim: Simulator, export_id: str) -> dict:
    for _ in range(10):
        status = poll(sim, export_id).json()
        if status["status"] != "PENDING":
            return status
    raise AssertionError("export never finished")


def test_rows_per_segment_as_dict_or_function_drives_truth():
    config = IndicativeConfig(segments=3, rows_per_segment={0: 2, 2: 5})
    with Simulator(SimConfig(indicative=config)) as simulator:
        assert simulator.truth()["indicative_segment_members"] == 7
        assert len(simulator.indicative.member_rows(segment_id(simulator, 1))) == 0
        status = export_until_done(simulator, segment_id(simulator, 1))
        assert csv_rows(requests.get(status["filename"]).content) == []
    config = IndicativeConfig(segments=3, rows_per_segment=lambda index: 10 * (index + 1))
    with Simulator(SimConfig(indicative=config)) as simulator:
        assert simulator.truth()["indicative_segment_members"] == 60
        status = export_until_done(simulator, segment_id(simulator, 2))
        assert len(csv_rows(requests.get(status["filename"]).content)) == 30
        shown = requests.get(f"{simulator.url}/_sim/indicative/config").json()
        assert "lambda" in shown["rows_per_segment"]


def test_rows_and_failures_switched_over_http(sim):
    switches = {"rows_per_segment": {"1": 3}, "fail_segments": [0, segment_id(sim, 2)]}
    answer = requests.post(f"{sim.url}/_sim/indicative/config", json=switches)
    assert answer.ok and answer.json()["fail_segments"] == [0, segment_id(sim, 2)]
    assert sim.truth()["indicative_segment_members"] == 3
    assert [export_until_done(sim, segment_id(sim, i))["status"] for i in range(4)] == [
        "FAILED",
        "COMPLETE",
        "FAILED",
        "COMPLETE",
    ]
    status = export_until_done(sim, segment_id(sim, 1))
    assert len(csv_rows(requests.get(status["filename"]).content)) == 3


# -- unknown and expired exports -----------------------------------------------------------


def test_unknown_export_is_404(sim):
    assert poll(sim, "8f9fdd71-204c-41e1-a2ab-de7f85002f65").status_code == 404
    url = sim.storage.presign("upload-bucket", file_key("nope"))
    assert s3_error(requests.get(url)) == (403, "AccessDenied", "Access Denied")
    unsigned = f"{sim.storage_url}/upload-bucket/{file_key('nope')}"
    assert s3_error(requests.get(unsigned))[:2] == (403, "AccessDenied")


def make_older(sim: Simulator, how: str, export_id: str, hours: float) -> None:
    if how == "age_export":
        sim.indicative.age_export(export_id, hours=hours)
    elif how == "advance_clock":
        sim.indicative.advance_clock(hours=hours)
    elif how == "http_age":
        assert control(sim, "/age", {"exportId": export_id, "hours": hours}).ok
    else:
        assert control(sim, "/clock", {"hours": hours}).ok


@pytest.mark.parametrize("how", ["age_export", "advance_clock", "http_age", "http_clock"])
def test_export_past_48_hours_is_gone(sim, how):
    status = export_until_done(sim, segment_id(sim, 1))
    export_id = status["exportId"]
    make_older(sim, how, export_id, 47)
    inside = poll(sim, export_id)  # still inside the retention: the file is still there
    assert inside.status_code == 200 and inside.json()["status"] == "COMPLETE"
    assert requests.get(status["filename"]).status_code == 200
    make_older(sim, how, export_id, 2)
    # indicative-segments-export.md:82: gone from "Amazon" after 48 hours: a deleted key.
    assert not stored(sim, export_id)
    assert s3_error(requests.get(status["filename"])) == (403, "AccessDenied", "Access Denied")
    assert poll(sim, export_id).status_code == 404
    fresh = export_until_done(sim, segment_id(sim, 1))  # a new trigger works again
    assert fresh["exportId"] != export_id
    assert requests.get(fresh["filename"]).status_code == 200
    assert sim.indicative.trigger_counts()[segment_id(sim, 1)] == 2


def test_presigned_url_expires_on_the_storage_clock_and_a_status_read_signs_a_new_one(sim):
    status = export_until_done(sim, segment_id(sim, 0))
    sim.storage.clock.advance(3601)
    code = s3_error(requests.get(status["filename"]))
    assert code == (403, "AccessDenied", "Request has expired")
    fresh = poll(sim, status["exportId"]).json()["filename"]
    assert requests.get(fresh).status_code == 200


def test_retention_counts_from_completion_not_from_the_trigger(sim):
    export = trigger(sim, segment_id(sim, 0)).json()
    sim.indicative.advance_clock(hours=47)  # a slow export (the doc: "up to several hours")
    done = export_until_done_from(sim, export["exportId"])
    assert moment(done["endTime"]) - moment(done["startTime"]) >= dt.timedelta(hours=47)
    sim.indicative.advance_clock(hours=2)  # 49 h after the trigger, 2 h after completion
    assert poll(sim, export["exportId"]).status_code == 200
    assert requests.get(done["filename"]).status_code == 200
    sim.indicative.advance_clock(hours=46.5)  # 48.5 h after completion
    assert poll(sim, export["exportId"]).status_code == 404
    assert s3_error(requests.get(done["filename"]))[:2] == (403, "AccessDenied")


def test_failed_and_pending_exports_are_forgotten_after_48_hours(sim):
    sim.indicative.config.fail_segments = {0}
    failed = export_until_done(sim, segment_id(sim, 0))
    pending = trigger(sim, segment_id(sim, 1)).json()
    sim.indicative.age_export(failed["exportId"], hours=49)
    sim.indicative.age_export(pending["exportId"], hours=49)
    assert poll(sim, failed["exportId"]).status_code == 404
    assert poll(sim, pending["exportId"]).status_code == 404
    assert not stored(sim, pending["exportId"])


def test_expired_files_of_exports_never_read_again_are_deleted_too(sim):
    exports = [export_until_done(sim, segment_id(sim, i)) for i in range(3)]
    assert all(stored(sim, e["exportId"]) for e in exports)
    sim.indicative.age_export(exports[0]["exportId"], hours=30)
    sim.indicative.advance_clock(hours=20)  # export 0 is 50 h old, the others 20 h
    assert [stored(sim, e["exportId"]) for e in exports] == [False, True, True]
    sim.indicative.age_export(exports[1]["exportId"], hours=-10)  # 10 h old: not due yet
    sim.indicative.advance_clock(hours=30)  # 40 h and 50 h old
    assert [stored(sim, e["exportId"]) for e in exports] == [False, True, False]
    statuses = [poll(sim, e["exportId"]).status_code for e in exports]
    assert statuses == [404, 200, 404]


# -- Indicative's clock --------------------------------------------------------------------


def test_clock_moves_the_times_indicative_answers_and_its_date_header(sim):
    before = sim.indicative.now()
    sim.indicative.advance_clock(hours=10)
    after = sim.indicative.now()
    assert dt.timedelta(hours=10) <= after - before < dt.timedelta(hours=10, seconds=5)
    export = trigger(sim, segment_id(sim, 0))
    started = moment(export.json()["startTime"])
    assert abs(started - sim.indicative.now()) < dt.timedelta(seconds=5)
    date = email.utils.parsedate_to_datetime(export.headers["Date"])
    assert abs(date - sim.indicative.now()) < dt.timedelta(seconds=5)
    answer = control(sim, "/clock", {"hours": -10})
    assert abs(moment(answer.json()["now"]) - before) < dt.timedelta(seconds=5)


def test_touch_moves_last_run_to_now_on_indicatives_clock(sim):
    sim.indicative.advance_clock(hours=5)
    before = [s["lastRun"] for s in sim.indicative.segments]
    earliest = sim.indicative.now().replace(microsecond=0)
    sim.indicative.touch(segment_id(sim, 0))
    answer = control(sim, "/touch", {"segmentId": segment_id(sim, 3)})
    latest = sim.indicative.now()
    assert answer.ok
    after = [s["lastRun"] for s in requests.get(api(sim, "/list"), auth=auth(sim)).json()]
    assert after[1:3] == before[1:3]
    assert before[3] is None
    for touched in (after[0], after[3]):
        assert ISO_MILLIS.match(touched) and earliest <= moment(touched) <= latest
    assert control(sim, "/touch", {"segmentId": "nope"}).status_code == 404
    with pytest.raises(KeyError):
        sim.indicative.touch("nope")


# -- truth, counters, control endpoints ------------------------------------------------------


def test_truth_and_counters(sim):
    indicative = {k: v for k, v in sim.truth().items() if k.startswith("indicative_")}
    assert indicative == {
        "indicative_segments": 4,
        "indicative_segment_exports": 4,
        "indicative_segment_members": 28,
    }
    status = export_until_done(sim, segment_id(sim, 0))
    second = trigger(sim, segment_id(sim, 0)).json()
    assert sim.indicative.trigger_counts()[segment_id(sim, 0)] == 2
    assert sim.indicative.trigger_count() == 2
    assert sim.indicative.status_polls() == {status["exportId"]: 3, second["exportId"]: 0}
    assert sim.indicative.poll_count() == 3
    assert sim.requests_by_method() == {"POST": 2, "GET": 3}
    stats = control(sim, "/stats").json()
    assert (stats["trigger_count"], stats["poll_count"]) == (2, 3)
    assert stats["triggers"] == sim.indicative.trigger_counts()
    assert stats["status_polls"] == sim.indicative.status_polls()
    assert ISO_MILLIS.match(stats["now"])
    assert control(sim, "/triggers").json() == sim.indicative.trigger_counts()
    assert requests.get(f"{sim.url}/_sim/truth").json() == sim.truth()


def test_status_polls_count_throttled_reads_too(sim):
    sim.indicative.config.throttle_polls = 2
    export = trigger(sim, segment_id(sim, 0)).json()
    codes = [poll(sim, export["exportId"]).status_code for _ in range(5)]
    assert codes == [429, 429, 200, 200, 200]
    assert sim.indicative.status_polls() == {export["exportId"]: 5}
    assert poll(sim, export["exportId"]).json()["status"] == "COMPLETE"  # 3 answered reads
    poll(sim, "unknown")
    assert sim.indicative.poll_count() == 6  # a 404 is not a status read of an export


def test_control_endpoints_refuse_bad_bodies(sim):
    export = trigger(sim, segment_id(sim, 0)).json()
    assert control(sim, "/age", {"exportId": "nope", "hours": 49}).status_code == 404
    assert control(sim, "/age", {"exportId": export["exportId"]}).status_code == 400
    assert control(sim, "/age", {"exportId": export["exportId"], "hours": "x"}).status_code == 400
    assert control(sim, "/clock", {"hours": None}).status_code == 400
    assert control(sim, "/clock", [1]).status_code == 400
    assert control(sim, "/touch", {}).status_code == 400
    not_json = requests.post(f"{sim.url}/_sim/indicative/clock", data=b"{hours")
    assert not_json.status_code == 400
    assert control(sim, "/nothing-here").status_code == 404
    assert poll(sim, export["exportId"]).status_code == 200  # nothing was moved


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


@pytest.mark.parametrize("gzipped", [False, True])  # a fixed-length body, a chunked one
def test_cut_download_breaks_a_file(sim, gzipped):
    sim.indicative.config.gzip = gzipped
    status = export_until_done(sim, segment_id(sim, 2))
    sim.faults.add("cut_download", path="/files/", after_bytes=50)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(status["filename"]).content  # noqa: B018
    whole = requests.get(status["filename"])
    body = gzip.decompress(whole.content) if gzipped else whole.content
    assert csv_rows(body) == sim.indicative.member_rows(segment_id(sim, 2))


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
    first = log[0]
    assert {k: first[k] for k in ("vendor", "method", "path", "query", "status")} == {
        "vendor": "indicative",
        "method": "GET",
        "path": "/service/v1/segments/list",
        "query": "",
        "status": 503,
    }
    assert first["origin"] == sim.url
    headers = {name.lower(): value for name, value in first["headers"]}
    assert headers["authorization"].startswith("Basic ")


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
        assert done["filename"].startswith(values["SIMULATOR_STORAGE_URL"] + "/")
        assert urlsplit(done["filename"]).path.endswith(".csv.gz")
        body = gzip.decompress(requests.get(done["filename"], timeout=5).content)
        assert len(csv_rows(body)) == 11
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0
