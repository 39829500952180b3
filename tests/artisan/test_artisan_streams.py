"""Artisan against requests-mock: auth headers, job shapes, statuses, profiles, exports."""

from __future__ import annotations

import re

import pytest
import requests_mock as rm
from singer_output import run_in_process

from tap_segments.errors import ExportFailedError, FileFormatError, VendorAuthError
from tap_segments.vendors.artisan.api import job_list, normalize_job
from tap_segments.vendors.artisan.streams import MAX_IDS_QUERY_CHARS, id_batches

BASE = "https://artisan.test"
CONFIG = {
    "artisan_base_url": BASE,
    "artisan_public_api_key": "pub-key-1",
    "artisan_secret_api_key": "secret-key-2",
    "export_poll_interval_seconds": 0.01,
    "export_poll_max_interval_seconds": 0.02,
}
WRAPPED = {
    "jobs": [{"jobs": {"_id": "j1", "status": "completed", "updated_at": "2026-11-02T00:00:00Z"}}]
}
FLAT = {"jobs": [{"id": "j2", "status": "COMPLETE", "type": "Segments Export"}]}


def test_both_documented_job_shapes_normalise_alike():
    assert job_list(WRAPPED) == [
        {"id": "j1", "status": "COMPLETED", "updated_at": "2026-11-02T00:00:00Z"}
    ]
    assert job_list(FLAT) == [{"id": "j2", "status": "COMPLETE", "type": "Segments Export"}]
    assert normalize_job({"jobs": {"_id": "x", "status": "queued"}}) == {
        "id": "x",
        "status": "QUEUED",
    }


def test_id_batches_keep_urls_short_and_lose_no_id():
    ids = [f"device-{i:05d}-abcdef0123456789" for i in range(500)]
    batches = list(id_batches(ids))
    assert [i for b in batches for i in b] == ids
    assert all(len(",".join(b)) <= MAX_IDS_QUERY_CHARS for b in batches)
    assert len(batches) > 1


class FakeArtisan:
    def __init__(self, mocker: rm.Mocker) -> None:
        self.mocker = mocker
        self.polls = 0
        self.final = {"status": "COMPLETE", "result_url": "/files/j9.json"}
        mocker.get(f"{BASE}/public/api/apps", json={"apps": [{"id": "a1", "name": "App"}]})
        mocker.get(f"{BASE}/public/api/apps/a1/segments/", json=[{"_id": "s1", "name": "S"}])
        mocker.get(f"{BASE}/public/api/jobs", json=WRAPPED)
        mocker.post(f"{BASE}/public/api/apps/a1/segments/s1", json={"job_id": "j9"})
        mocker.post(f"{BASE}/public/api/apps/a1/users/export", json={"jobs": {"_id": "p9"}})
        mocker.get(re.compile(rf"{BASE}/public/api/jobs/(j9|p9)"), json=self.job)
        mocker.get(
            f"{BASE}/files/j9.json",
            json=[{"artisanId": "d1", "nested": {"a": 1}}, {"artisanId": "d2"}],
        )
        mocker.get(
            f"{BASE}/files/p9.json",
            json=[
                {
                    "identifier": "d1",
                    "identifierSource": "artisan",
                    "href": "h",
                    "attributes": {"k": "v"},
                }
            ],
        )

    def job(self, request, context):
        self.polls += 1
        job_id = request.path.rsplit("/", 1)[-1]
        if self.polls < 2:
            return {"_id": job_id, "status": "running"}
        return {
            "jobs": {
                "_id": job_id,
                **self.final,
                "result_url": self.final.get("result_url", "").replace("j9", job_id),
            }
        }


@pytest.fixture
def artisan():
    with rm.Mocker() as mocker:
        yield FakeArtisan(mocker)


def test_auth_headers_are_sent_on_every_request(artisan):
    run_in_process(CONFIG)
    for request in artisan.mocker.request_history:
        if request.path.startswith("/public"):
            assert request.headers["Authorization"] == 'Token token="secret-key-2"'
            assert request.headers["public-api-key"] == "pub-key-1"


def test_all_streams_and_shapes(artisan):
    out = run_in_process(CONFIG)
    assert out.records["artisan_jobs"] == [
        {"id": "j1", "status": "COMPLETED", "updated_at": "2026-11-02T00:00:00Z"}
    ]
    assert out.records["artisan_segments"] == [{"id": "s1", "name": "S", "app_id": "a1"}]
    members = out.records["artisan_segment_members"]
    assert [(m["artisanId"], m["row_number"], m["job_id"]) for m in members] == [
        ("d1", 1, "j9"),
        ("d2", 2, "j9"),
    ]
    assert members[0]["nested"] == {"a": 1}  # nested values kept whole
    profile = out.records["artisan_profiles"][0]
    assert profile["attributes"] == {"k": "v"} and profile["app_id"] == "a1"


def test_callback_url_only_when_set(artisan):
    run_in_process(CONFIG)
    posts = [r for r in artisan.mocker.request_history if r.method == "POST"]
    assert posts and all(not r.body for r in posts)
    artisan.mocker.reset_mock()
    run_in_process({**CONFIG, "artisan_callback_url": "https://hooks.example/x"})
    posts = [r for r in artisan.mocker.request_history if r.method == "POST"]
    assert posts and all(r.json() == {"callbackUrl": "https://hooks.example/x"} for r in posts)


def test_profiles_by_ids_in_batches_with_custom_source(artisan):
    ids = [f"shared-user-{i:04d}-0123456789abcdef" for i in range(120)]

    def users(request, context):
        wanted = request.qs["ids"][0].split(",")
        return {
            "success": True,
            "response": [{"identifier": i, "identifierSource": "custom"} for i in wanted],
        }

    artisan.mocker.get(f"{BASE}/public/api/apps/a1/users", json=users)
    out = run_in_process({**CONFIG, "artisan_shared_user_ids": ids})
    calls = [r for r in artisan.mocker.request_history if r.path.endswith("/users")]
    assert len(calls) > 1 and all(r.qs["source"] == ["custom"] for r in calls)
    assert {p["identifier"] for p in out.records["artisan_profiles"]} == {i.lower() for i in ids}
    assert not [r for r in artisan.mocker.request_history if r.path.endswith("/users/export")]


def test_failed_job_is_reported_by_id(artisan):
    artisan.final = {"status": "FAILED"}
    with pytest.raises(ExportFailedError, match=r"Artisan export p9 for a1 ended FAILED\."):
        run_in_process(CONFIG)


def test_unparsable_result_file_names_the_job(artisan):
    artisan.mocker.get(f"{BASE}/files/j9.json", text='[{"artisanId": "d1"}, {"broken": ]')
    with pytest.raises(FileFormatError, match=r"Artisan job j9"):
        run_in_process(CONFIG)


def test_wrong_keys_name_artisan_and_both_settings_not_values(artisan):
    artisan.mocker.get(f"{BASE}/public/api/apps", status_code=401, json={})
    with pytest.raises(VendorAuthError) as caught:
        run_in_process(CONFIG)
    text = str(caught.value)
    assert (
        "Artisan" in text and "artisan_public_api_key" in text and "artisan_secret_api_key" in text
    )
    assert "secret-key-2" not in text and "pub-key-1" not in text
