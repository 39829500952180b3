"""The simulated Acoustic Exchange: Bearer auth, documented job shapes, files, PUT complete."""

from __future__ import annotations

import csv
import gzip
import io

import pytest
import requests

from simulator import SimConfig, Simulator
from simulator.acoustic import CATEGORIES, AcousticConfig

DOCUMENTED_JOB_FIELDS = {
    "jobCategory",
    "jobId",
    "scheduledJobId",
    "status",
    "jobName",
    "accountId",
    "subStatus",
    "errorDetails",
    "segmentDataFiles",
    "segmentDataFormat",
    "destinationSegmentID",
    "destinationSegmentName",
    "destinationSegmentDescription",
    "destinationEndpointID",
    "exportCategory",
    "producerEndpointID",
    "producerSegmentIDString",
    "producerSegmentID",
    "updateIdentities",
    "sourceIdentifiers",
    "destinationIdentifier",
    "attributeMappings",
    "identityMappings",
    "shareAction",
    "started",
    "ended",
    "scheduleDetails",
    "translatedRecordCount",
    "sourceRecordCount",
    "destinationRecordCount",
}


@pytest.fixture
def sim():
    with Simulator(SimConfig(seed=5, acoustic=AcousticConfig(jobs_per_category=8))) as s:
        yield s


def call(sim: Simulator, method: str, path: str, **kwargs) -> requests.Response:
    key = sim.tap_config()["acoustic_auth_key"]
    headers = {"Authorization": f"Bearer {key}"}
    return requests.request(method, f"{sim.base_url('acoustic')}{path}", headers=headers, **kwargs)


def ready_jobs(sim: Simulator) -> list[dict]:
    params = {"status": "READY_FOR_DOWNLOAD", "extraFields": "true"}
    return call(sim, "GET", "/v1/jobs/SEGMENT_EXPORT", params=params).json()


def test_bearer_key_is_required(sim):
    url = f"{sim.base_url('acoustic')}/v1/jobs/SEGMENT_EXPORT"
    assert requests.get(url).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert call(sim, "GET", "/v1/jobs/SEGMENT_EXPORT").status_code == 200


@pytest.mark.parametrize("category", CATEGORIES)
def test_jobs_have_the_documented_field_set(sim, category):
    params = {"extraFields": "true", "includeProducerSegmentIDString": "true"}
    jobs = call(sim, "GET", f"/v1/jobs/{category}", params=params).json()
    assert len(jobs) == 8
    assert all(set(job) == DOCUMENTED_JOB_FIELDS for job in jobs)
    assert all(job["jobCategory"] == category for job in jobs)
    assert all(isinstance(job["started"], int) for job in jobs)  # epoch milliseconds
    assert all(job["producerSegmentIDString"] for job in jobs)


def test_extra_fields_and_producer_string_only_when_asked(sim):
    (job, *_) = call(sim, "GET", "/v1/jobs/SEGMENT_EXPORT").json()
    assert not {"started", "ended", "scheduleDetails"} & set(job)
    assert job["producerSegmentIDString"] is None


def test_status_and_endpoint_filters(sim):
    assert {job["status"] for job in ready_jobs(sim)} == {"READY_FOR_DOWNLOAD"}
    jobs = call(sim, "GET", "/v1/jobs/IDENTITY_IMPORT", params={"endpointId": "85"}).json()
    assert jobs and {job["producerEndpointID"] for job in jobs} == {85}
    assert call(sim, "GET", "/v1/jobs/NOT_A_CATEGORY").status_code == 400


def test_one_job_answers_a_one_element_array(sim):
    job_id = ready_jobs(sim)[0]["jobId"]
    answer = call(sim, "GET", f"/v1/jobs/SEGMENT_EXPORT/{job_id}").json()
    assert isinstance(answer, list) and [job["jobId"] for job in answer] == [job_id]
    assert call(sim, "GET", "/v1/jobs/SEGMENT_EXPORT/999999").status_code == 404


def test_ready_jobs_name_one_to_three_files_each_with_its_own_header(sim):
    jobs = ready_jobs(sim)
    counts = {len(job["segmentDataFiles"]) for job in jobs}
    assert counts <= {1, 2, 3} and len(counts) > 1
    for job in jobs:
        for name in job["segmentDataFiles"]:
            text = call(sim, "GET", f"/v1/jobs/{job['jobId']}/segmentDataFiles/{name}").text
            rows = list(csv.DictReader(io.StringIO(text)))
            assert list(rows[0]) == ["email", "firstName", "country"]
            assert len(rows) == sim.acoustic.rows_in(job["jobId"], name)


def test_files_can_be_gzipped(sim):
    sim.acoustic.config.gzip = True
    job = ready_jobs(sim)[0]
    name = job["segmentDataFiles"][0]
    body = call(sim, "GET", f"/v1/jobs/{job['jobId']}/segmentDataFiles/{name}").content
    assert gzip.decompress(body).decode().startswith("email,firstName,country\n")


def test_scheduled_jobs_only_for_segment_export(sim):
    scheduled = call(sim, "GET", "/v1/scheduledjobs/SEGMENT_EXPORT").json()
    fields = {"jobId", "state", "jobCategory", "jobName", "accountId", "active", "errorDetails"}
    assert scheduled and all(set(job) == fields for job in scheduled)
    assert call(sim, "GET", "/v1/scheduledjobs/IDENTITY_IMPORT").status_code == 400


def test_put_complete_marks_the_job_and_deletes_its_files(sim):
    job = ready_jobs(sim)[0]
    answer = call(sim, "PUT", f"/v1/jobs/{job['jobId']}/status/complete")
    assert answer.status_code == 200 and answer.json() is True
    assert job["jobId"] not in {j["jobId"] for j in ready_jobs(sim)}
    for name in job["segmentDataFiles"]:
        path = f"/v1/jobs/{job['jobId']}/segmentDataFiles/{name}"
        assert call(sim, "GET", path).status_code == 404


def test_writer_endpoints_exist_and_are_logged(sim):
    job = ready_jobs(sim)[0]
    job_id, name = job["jobId"], job["segmentDataFiles"][0]
    writes = [
        ("POST", f"/v1/jobs/{job_id}/data"),
        ("PUT", f"/v1/jobs/{job_id}/status/fail"),
        ("DELETE", f"/v1/jobs/{job_id}/segmentDataFiles/{name}"),
        ("DELETE", f"/v1/jobs/{job_id}/segmentDateFiles/{name}"),  # the doc's typo
        ("DELETE", "/v1/scheduledjobs/300"),
    ]
    for method, path in writes:
        assert call(sim, method, path).status_code == 200
    logged = {(e.method, e.path) for e in sim.requests if e.vendor == "acoustic"}
    assert set(writes) <= logged
    assert call(sim, "GET", f"/v1/jobs/{job_id}/segmentDataFiles/{name}").status_code == 404
    # These writes were this test's, not the tap's: keep them out of the session's
    # read-only check (tests/conftest.py), which is about what the tap sends.
    with sim.server.log_lock:
        sim.server.log.clear()


def test_truth_counts_jobs_scheduled_jobs_and_rows(sim):
    truth = sim.truth()
    assert truth["acoustic_jobs"] == 8 * len(CATEGORIES)
    scheduled = call(sim, "GET", "/v1/scheduledjobs/SEGMENT_EXPORT").json()
    assert truth["acoustic_scheduled_jobs"] == len(scheduled)
    rows = sum(
        sim.acoustic.rows_in(job["jobId"], name)
        for job in ready_jobs(sim)
        for name in job["segmentDataFiles"]
    )
    assert truth["acoustic_segment_data"] == rows
