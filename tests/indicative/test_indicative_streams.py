"""Indicative streams against requests-mock: the documented endpoints, auth and shapes."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import re

import pytest
import requests_mock as rm
from singer_output import run_in_process

from tap_segments.errors import MalformedResponseError, VendorAuthError

BASE = "https://query.indicative.test"
CONFIG = {
    "indicative_base_url": BASE,
    "indicative_api_key": "key-123",
    "indicative_access_token": "token-secret-456",
    "export_poll_interval_seconds": 0.01,
    "export_poll_max_interval_seconds": 0.02,
    "http_retry_base_seconds": 0.01,
}
SEGMENTS = [
    {
        "segmentId": "seg-a",
        "name": "A",
        "description": None,
        "category": None,
        "projectId": "p1",
        "type": "Dynamic",
        "lastRun": "2026-11-20T10:00:00.000Z",
    },
    {
        "segmentId": "seg-b",
        "name": "B",
        "description": "b",
        "category": "c",
        "projectId": "p1",
        "type": "Static",
        "lastRun": None,
    },
]
FILES = {
    "seg-a": b"userId,email\nu1,a@x.io\nu2,b@x.io\n",
    "seg-b": b"userId,email,country\nu9,z@x.io,FR\n",
}


class FakeIndicative:
    """Exports that are PENDING once, then COMPLETE with a presigned S3 URL as filename."""

    def __init__(self, mocker: rm.Mocker, *, gzip_files: bool = False) -> None:
        self.exports: dict[str, dict] = {}
        self.polls: dict[str, int] = {}
        self.mocker = mocker
        self.gzip_files = gzip_files
        mocker.get(f"{BASE}/service/v1/segments/list", json=SEGMENTS)
        mocker.post(f"{BASE}/service/v1/segments/export/", json=self.trigger)
        mocker.get(re.compile(rf"{BASE}/service/v1/segments/export/.+"), json=self.status)
        mocker.get(re.compile(r"https://bucket\.s3\.amazonaws\.com/.+"), content=self.file)

    def trigger(self, request, context):
        segment_id = request.json()["segmentId"]
        export_id = f"exp-{segment_id}-{len(self.exports) + 1}"
        self.exports[export_id] = {"exportId": export_id, "segmentId": segment_id}
        return {"exportId": export_id, "status": "PENDING", "segment": {"segmentId": segment_id}}

    def status(self, request, context):
        export_id = request.path.rsplit("/", 1)[-1]
        if export_id not in self.exports:
            context.status_code = 404
            return {"error": "not found"}
        count = self.polls[export_id] = self.polls.get(export_id, 0) + 1
        segment_id = self.exports[export_id]["segmentId"]
        done = count >= 2
        return {
            "exportId": export_id,
            "segment": next(s for s in SEGMENTS if s["segmentId"] == segment_id),
            "status": "COMPLETE" if done else "PENDING",
            "projectId": "p1",
            "startTime": "2026-11-23T10:00:00.000Z",
            "endTime": "2026-11-23T10:00:05.000Z" if done else None,
            "filename": f"https://bucket.s3.amazonaws.com/exports/{export_id}.csv"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc123"
            if done
            else None,
        }

    def file(self, request, context):
        export_id = request.path.rsplit("/", 1)[-1].removesuffix(".csv")
        body = FILES[self.exports[export_id]["segmentId"]]
        return gzip.compress(body) if self.gzip_files else body

    @property
    def triggered(self) -> list[str]:
        return [e["segmentId"] for e in self.exports.values()]


@pytest.fixture
def indicative():
    with rm.Mocker() as mocker:
        yield FakeIndicative(mocker)


def test_basic_auth_uses_key_and_token_and_never_reaches_storage(indicative):
    run_in_process(CONFIG)
    header = indicative.mocker.request_history[0].headers["Authorization"]
    assert header == "Basic " + base64.b64encode(b"key-123:token-secret-456").decode()
    storage = [r for r in indicative.mocker.request_history if "amazonaws" in r.url]
    assert storage, "the export files were not downloaded"
    assert all("Authorization" not in r.headers for r in storage)


def test_full_sync_emits_segments_exports_and_members(indicative):
    out = run_in_process(CONFIG)
    assert [r["segmentId"] for r in out.records["indicative_segments"]] == ["seg-a", "seg-b"]
    exports = out.records["indicative_segment_exports"]
    assert sorted(e["segmentId"] for e in exports) == ["seg-a", "seg-b"]
    assert all(e["status"] == "COMPLETE" for e in exports)
    members = out.records["indicative_segment_members"]
    assert sorted((m["segmentId"], m["row_number"], m["userId"]) for m in members) == [
        ("seg-a", 1, "u1"),
        ("seg-a", 2, "u2"),
        ("seg-b", 1, "u9"),
    ]
    assert next(m for m in members if m["userId"] == "u9")["country"] == "FR"
    # The file's columns were announced in a SCHEMA before the records carrying them.
    last_schema = out.schemas("indicative_segment_members")[-1]
    assert {"userId", "email", "country"} <= set(last_schema["properties"])
    state = out.last_state["bookmarks"]["indicative_segment_exports"]
    assert state["exports_in_flight"] == {}
    assert state["segments_exported"] == {"seg-a": "2026-11-20T10:00:00.000Z", "seg-b": None}


def test_gzip_files_are_read(indicative):
    indicative.gzip_files = True
    out = run_in_process(CONFIG)
    assert out.count("indicative_segment_members") == 3


def test_rerun_with_state_triggers_no_export(indicative):
    first = run_in_process(CONFIG)
    second = run_in_process(CONFIG, state=first.last_state)
    assert indicative.triggered == ["seg-a", "seg-b"]  # nothing more
    assert second.count("indicative_segment_members") == 0
    # seg-a: lastRun == bookmark (inclusive, SDK-style); seg-b: never refreshed (null lastRun)
    assert second.count("indicative_segments") == 2


def test_refreshed_segment_is_exported_again(indicative):
    first = run_in_process(CONFIG)
    SEGMENTS[0]["lastRun"] = "2026-11-21T10:00:00.000Z"
    try:
        second = run_in_process(CONFIG, state=first.last_state)
    finally:
        SEGMENTS[0]["lastRun"] = "2026-11-20T10:00:00.000Z"
    assert indicative.triggered == ["seg-a", "seg-b", "seg-a"]
    assert second.count("indicative_segment_members") == 2


def test_in_flight_export_in_state_is_resumed_not_triggered(indicative):
    indicative.exports["exp-old"] = {"exportId": "exp-old", "segmentId": "seg-a"}
    state = {
        "bookmarks": {
            "indicative_segment_exports": {
                "segments_exported": {"seg-b": None},
                "exports_in_flight": {
                    "seg-a": {"job_id": "exp-old", "started_at": _recent(), "data": {}}
                },
            }
        }
    }
    out = run_in_process(CONFIG, state=state)
    assert indicative.triggered == ["seg-a"]  # the pre-existing entry only: no new POST
    assert indicative.mocker.request_history[-1].method != "POST"
    assert [e["exportId"] for e in out.records["indicative_segment_exports"]] == ["exp-old"]
    assert out.count("indicative_segment_members") == 2


def test_expired_export_in_state_is_triggered_afresh(indicative):
    # older than the 48 hours Indicative keeps an export, whatever today is
    started = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=49)).isoformat()
    state = {
        "bookmarks": {
            "indicative_segment_exports": {
                "segments_exported": {"seg-b": None},
                "exports_in_flight": {"seg-a": {"job_id": "exp-old", "started_at": started}},
            }
        }
    }
    out = run_in_process(CONFIG, state=state)
    assert indicative.triggered == ["seg-a"]
    assert out.count("indicative_segment_members") == 2
    assert "exp-old" not in indicative.polls


def test_file_gone_triggers_the_export_again(indicative):
    indicative.mocker.get(
        re.compile(r"https://bucket\.s3\.amazonaws\.com/exports/exp-seg-a-1.csv"), status_code=403
    )
    out = run_in_process({**CONFIG, "indicative_segment_ids": ["seg-a"]})
    assert indicative.triggered == ["seg-a", "seg-a"]
    assert {m["exportId"] for m in out.records["indicative_segment_members"]} == {"exp-seg-a-2"}


def test_429_is_retried_after_retry_after(indicative):
    indicative.mocker.get(
        f"{BASE}/service/v1/segments/list",
        [
            {"status_code": 429, "headers": {"Retry-After": "0"}, "json": {}},
            {"json": SEGMENTS},
        ],
    )
    out = run_in_process({**CONFIG, "indicative_segment_ids": ["seg-b"]})
    assert out.count("indicative_segments") == 1


def test_wrong_credentials_name_vendor_and_settings_never_values(indicative):
    indicative.mocker.get(f"{BASE}/service/v1/segments/list", status_code=401, json={})
    with pytest.raises(VendorAuthError) as caught:
        run_in_process(CONFIG)
    message = str(caught.value)
    assert "Indicative" in message and "indicative_access_token" in message
    assert "token-secret-456" not in message and "key-123" not in message


def test_html_error_page_is_a_clear_error(indicative):
    indicative.mocker.get(
        f"{BASE}/service/v1/segments/list",
        text="<html><body>Bad gateway</body></html>",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(MalformedResponseError, match=r"Indicative: GET /service/v1/segments/list"):
        run_in_process(CONFIG)


def _recent() -> str:
    import datetime as dt

    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat()
