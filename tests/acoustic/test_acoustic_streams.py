"""Acoustic Exchange streams against requests-mock: endpoints, shapes, state and the PUT rule."""

from __future__ import annotations

import copy
import gzip
import logging
import re

import pytest
import requests_mock as rm
from singer_output import run_in_process

from tap_segments.errors import FileFormatError, MalformedResponseError, VendorAuthError
from tap_segments.timeutil import epoch_millis
from tap_segments.vendors.acoustic.api import data_file_names, normalise_job

BASE = "https://exchange.acoustic.test/api"  # the account's own base URL, with a path
CONFIG = {
    "acoustic_base_url": BASE + "/",
    "acoustic_auth_key": "key-abcd-5678",
    "acoustic_job_categories": ["SEGMENT_EXPORT", "IDENTITY_IMPORT"],
    "http_retry_base_seconds": 0.01,
}
SCHEDULE = {
    "runNow": True,
    "runRepeat": False,
    "daysOfWeek": None,
    "daysOfMonth": None,
    "monthsOfYear": None,
    "year": None,
    "startHour": "10",
    "startMinute": "00",
    "startSecond": "00",
    "startDate": "2026-11-20",
    "endDate": None,
    "timeSliceStartDate": None,
    "timeSliceEndDate": None,
    "timezone": "UTC",  # not in the doc: kept anyway
}


def job(job_id: int, status: str, started: int | None, **extra) -> dict:
    """A job with the doc's full field set."""
    return {
        "jobCategory": "SEGMENT_EXPORT",
        "jobId": job_id,
        "scheduledJobId": 1234,
        "status": status,
        "jobName": "EXPORT_SEGMENT",
        "accountId": 2,
        "subStatus": "EXPORT_SEGMENT",
        "errorDetails": None,
        "segmentDataFiles": None,
        "segmentDataFormat": None,
        "destinationSegmentID": None,
        "destinationSegmentName": "myDestSegName",
        "destinationSegmentDescription": None,
        "destinationEndpointID": 7,
        "exportCategory": "mycat2",
        "producerEndpointID": 85,
        "producerSegmentIDString": None,
        "producerSegmentID": 45311,
        "updateIdentities": False,
        "sourceIdentifiers": None,
        "destinationIdentifier": None,
        "attributeMappings": {},
        "identityMappings": {"Email": "workEmail"},
        "shareAction": None,
        "started": started,
        "ended": None if started is None else started + 60_000,
        "scheduleDetails": None,
        "translatedRecordCount": 3,
        "sourceRecordCount": 3,
        "destinationRecordCount": 3,
        **extra,
    }


JOBS = {
    "SEGMENT_EXPORT": [
        job(101, "READY_FOR_DOWNLOAD", 1763632800000, segmentDataFiles=["101_a.csv", "101_b.csv"]),
        # The DELETE example's typo, used as a field name: accepted too.
        job(102, "READY_FOR_DOWNLOAD", 1763636400000, segmentDateFiles=["102_a.csv"]),
        # No file names in the list: the one-job GET (a one-element array) names them.
        job(103, "READY_FOR_DOWNLOAD", 1763640000000),
        job(104, "COMPLETE", 1763550000000, scheduleDetails=SCHEDULE, newField="kept"),
    ],
    "IDENTITY_IMPORT": [
        {**job(201, "RUNNING", 1763643600000), "jobCategory": "IDENTITY_IMPORT"},
    ],
}
FILES = {
    ("101", "101_a.csv"): b"email,firstName\na@x.io,Ann\nb@x.io,Bob\n",
    ("101", "101_b.csv"): b"email,firstName\nc@x.io,Cid\n",  # its own header again
    ("102", "102_a.csv"): b"email,country\nd@x.io,FR\n",
    ("103", "103_a.csv"): b"email\ne@x.io\n",
}
SCHEDULED = [
    {
        "jobId": 301,
        "state": "SCHEDULED",
        "jobCategory": "SEGMENT_EXPORT",
        "jobName": "EXPORT_SEGMENT",
        "accountId": 2,
        "active": 1,
        "errorDetails": None,
    }
]


class FakeAcoustic:
    """The documented endpoints; PUT complete turns a job COMPLETE and deletes its files."""

    def __init__(self, mocker: rm.Mocker) -> None:
        self.mocker = mocker
        self.jobs = copy.deepcopy(JOBS)
        self.files = dict(FILES)
        self.gzip_files = False
        self.put_answer = "true"
        mocker.get(re.compile(rf"{BASE}/v1/jobs/[A-Z_]+$"), json=self.list_jobs)
        mocker.get(re.compile(rf"{BASE}/v1/jobs/[A-Z_]+\?"), json=self.list_jobs)
        mocker.get(re.compile(rf"{BASE}/v1/jobs/SEGMENT_EXPORT/\d+"), json=self.one_job)
        mocker.get(re.compile(rf"{BASE}/v1/jobs/\d+/segmentDataFiles/.+"), content=self.file)
        mocker.put(re.compile(rf"{BASE}/v1/jobs/\d+/status/complete"), text=self.complete)
        mocker.get(re.compile(rf"{BASE}/v1/scheduledjobs/SEGMENT_EXPORT"), json=SCHEDULED)
        mocker.get(re.compile(rf"{BASE}/v1/scheduledjobs/(?!SEGMENT_EXPORT).+"), status_code=400)

    def list_jobs(self, request, context):
        category = request.path.rsplit("/", 1)[-1].upper()
        status = request.qs.get("status", [None])[0]
        jobs = self.jobs.get(category, [])
        return [j for j in jobs if status is None or j["status"].upper() == status.upper()]

    def one_job(self, request, context):
        job_id = int(request.path.rsplit("/", 1)[-1])
        found = [dict(j) for j in self.jobs["SEGMENT_EXPORT"] if j["jobId"] == job_id]
        for j in found:
            if j["jobId"] == 103 and j["status"] == "READY_FOR_DOWNLOAD":
                j["segmentDataFiles"] = ["103_a.csv"]
        return found  # the doc's one-element array

    def file(self, request, context):
        parts = request.path.split("/")
        key = (parts[-3], parts[-1])
        if key not in self.files:
            context.status_code = 404
            return b"not found"
        return gzip.compress(self.files[key]) if self.gzip_files else self.files[key]

    def complete(self, request, context):
        job_id = int(request.path.split("/")[-3])
        for j in self.jobs["SEGMENT_EXPORT"]:
            if j["jobId"] == job_id and self.put_answer == "true":
                j["status"] = "COMPLETE"
                self.files = {k: v for k, v in self.files.items() if k[0] != str(job_id)}
        return self.put_answer

    def calls(self, method: str) -> list[str]:
        return [r.path for r in self.mocker.request_history if r.method == method]


@pytest.fixture
def acoustic():
    with rm.Mocker() as mocker:
        yield FakeAcoustic(mocker)


def data_rows(out) -> list[tuple]:
    return sorted(
        (r["jobId"], r["file_name"], r["row_number"], r["email"])
        for r in out.records["acoustic_segment_data"]
    )


ALL_ROWS = [
    (101, "101_a.csv", 1, "a@x.io"),
    (101, "101_a.csv", 2, "b@x.io"),
    (101, "101_b.csv", 1, "c@x.io"),
    (102, "102_a.csv", 1, "d@x.io"),
    (103, "103_a.csv", 1, "e@x.io"),
]


def test_requests_carry_bearer_key_and_documented_query(acoustic):
    run_in_process({**CONFIG, "acoustic_endpoint_id": "85"})
    history = acoustic.mocker.request_history
    assert {r.headers["Authorization"] for r in history} == {"Bearer key-abcd-5678"}
    assert all(r.path.startswith("/api/v1/") for r in history)  # the base URL's path is kept
    listings = [r for r in history if re.fullmatch(r"/api/v1/jobs/[a-z_]+", r.path)]
    for request in listings:
        assert request.qs["extrafields"] == ["true"]
        # The parameter table spells it endpointID, the examples endpointId: both are sent.
        assert "endpointID=85" in request.url and "endpointId=85" in request.url
    # One list per category, read by acoustic_jobs and acoustic_segment_data alike.
    assert sorted(r.path for r in listings) == [
        "/api/v1/jobs/identity_import",
        "/api/v1/jobs/segment_export",
    ]
    assert all(r.qs["includeproducersegmentidstring"] == ["true"] for r in listings)
    scheduled = [r for r in history if "/scheduledjobs/" in r.path]
    assert all(r.qs["endpointid"] == ["85"] for r in scheduled)


def test_jobs_keep_every_field_and_add_iso_copies(acoustic):
    out = run_in_process(CONFIG)
    jobs = {(j["jobCategory"], j["jobId"]): j for j in out.records["acoustic_jobs"]}
    assert sorted(jobs) == [
        ("IDENTITY_IMPORT", 201),
        ("SEGMENT_EXPORT", 101),
        ("SEGMENT_EXPORT", 102),
        ("SEGMENT_EXPORT", 103),
        ("SEGMENT_EXPORT", 104),
    ]
    complete = jobs[("SEGMENT_EXPORT", 104)]
    assert set(JOBS["SEGMENT_EXPORT"][3]) <= set(complete)
    assert complete["started"] == 1763550000000
    assert complete["started_iso"] == "2025-11-19T11:00:00.000+00:00"
    assert complete["ended_iso"] == "2025-11-19T11:01:00.000+00:00"
    assert complete["scheduleDetails"] == SCHEDULE
    assert complete["newField"] == "kept"
    assert complete["identityMappings"] == {"Email": "workEmail"}
    assert jobs[("SEGMENT_EXPORT", 102)]["segmentDataFiles"] == ["102_a.csv"]
    assert jobs[("SEGMENT_EXPORT", 102)]["segmentDateFiles"] == ["102_a.csv"]


def test_jobs_bookmark_is_epoch_millis_per_category(acoustic):
    out = run_in_process(CONFIG)
    partitions = out.last_state["bookmarks"]["acoustic_jobs"]["partitions"]
    by_category = {p["context"]["jobCategory"]: p for p in partitions}
    assert by_category["SEGMENT_EXPORT"]["replication_key_value"] == 1763640000000
    assert by_category["IDENTITY_IMPORT"]["replication_key_value"] == 1763643600000
    assert by_category["SEGMENT_EXPORT"]["open_jobs"] == ["101", "102", "103"]


def test_start_date_is_compared_as_epoch_millis(acoustic):
    out = run_in_process({**CONFIG, "start_date": "2025-11-20T11:00:00Z"})
    assert sorted(j["jobId"] for j in out.records["acoustic_jobs"]) == [102, 103, 201]


def test_rerun_emits_new_jobs_and_open_jobs_until_final(acoustic):
    first = run_in_process(CONFIG)
    acoustic.jobs["SEGMENT_EXPORT"][0]["status"] = "COMPLETE"  # 101, behind the bookmark
    second = run_in_process(CONFIG, state=first.last_state)
    emitted = sorted((j["jobId"], j["status"]) for j in second.records["acoustic_jobs"])
    # 101 changed to final; 102 still open; 103/201 at the bookmark (inclusive); 104 not again
    assert emitted == [
        (101, "COMPLETE"),
        (102, "READY_FOR_DOWNLOAD"),
        (103, "READY_FOR_DOWNLOAD"),
        (201, "RUNNING"),
    ]
    third = run_in_process(CONFIG, state=second.last_state)
    assert 101 not in {j["jobId"] for j in third.records["acoustic_jobs"]}


def test_scheduled_jobs_of_each_category(acoustic):
    out = run_in_process(CONFIG)
    assert out.records["acoustic_scheduled_jobs"] == SCHEDULED  # IDENTITY_IMPORT: 400, none


def test_segment_data_rows_of_every_file_with_own_header(acoustic):
    out = run_in_process(CONFIG)
    assert data_rows(out) == ALL_ROWS
    row = next(r for r in out.records["acoustic_segment_data"] if r["email"] == "d@x.io")
    assert row["country"] == "FR"
    assert {"email", "firstName", "country"} <= set(
        out.schemas("acoustic_segment_data")[-1]["properties"]
    )


def test_gzip_files_are_read(acoustic):
    acoustic.gzip_files = True
    out = run_in_process(CONFIG)
    assert data_rows(out) == ALL_ROWS


def test_state_after_each_file_and_rerun_emits_no_file_twice(acoustic):
    out = run_in_process(CONFIG)
    files_done = out.last_state["bookmarks"]["acoustic_segment_data"]["files_done"]
    assert files_done == {
        "101": ["101_a.csv", "101_b.csv"],
        "102": ["102_a.csv"],
        "103": ["103_a.csv"],
    }
    # A STATE naming a file follows that file's last row at once.
    seen_rows = 0
    for message in out.messages:
        if message["type"] == "RECORD" and message["stream"] == "acoustic_segment_data":
            seen_rows += 1
        if message["type"] == "STATE" and seen_rows == 2:
            done = message["value"]["bookmarks"]["acoustic_segment_data"]["files_done"]
            assert done == {"101": ["101_a.csv"]}
            break
    else:
        pytest.fail("no STATE right after the first file")
    second = run_in_process(CONFIG, state=out.last_state)
    assert second.count("acoustic_segment_data") == 0
    assert len([p for p in acoustic.calls("GET") if "/segmentdatafiles/" in p]) == 4


def test_jobs_no_longer_ready_are_pruned_from_state(acoustic):
    out = run_in_process(CONFIG)
    acoustic.jobs["SEGMENT_EXPORT"] = acoustic.jobs["SEGMENT_EXPORT"][1:]
    second = run_in_process(CONFIG, state=out.last_state)
    files_done = second.last_state["bookmarks"]["acoustic_segment_data"]["files_done"]
    assert set(files_done) == {"102", "103"}


def test_read_only_by_default(acoustic):
    run_in_process(CONFIG)
    methods = {r.method for r in acoustic.mocker.request_history}
    assert methods == {"GET"}


MARK = {"acoustic_mark_complete": True, "acoustic_endpoint_id": "7"}  # the jobs' destination


def test_mark_complete_puts_once_per_fully_downloaded_job(acoustic):
    config = {**CONFIG, **MARK}
    out = run_in_process(config)
    assert sorted(acoustic.calls("PUT")) == [
        "/api/v1/jobs/101/status/complete",
        "/api/v1/jobs/102/status/complete",
        "/api/v1/jobs/103/status/complete",
    ]
    assert acoustic.calls("DELETE") == [] and acoustic.calls("POST") == []
    assert out.last_state["bookmarks"]["acoustic_segment_data"]["files_done"] == {}
    # The PUT came after the job's last row.
    put_index = next(i for i, r in enumerate(acoustic.mocker.request_history) if r.method == "PUT")
    file_requests = [
        i
        for i, r in enumerate(acoustic.mocker.request_history)
        if "/101/segmentdatafiles/" in r.path
    ]
    assert max(file_requests) < put_index
    second = run_in_process(config, state=out.last_state)
    assert second.count("acoustic_segment_data") == 0
    assert len(acoustic.calls("PUT")) == 3


def test_files_done_earlier_are_completed_once_the_setting_is_on(acoustic):
    out = run_in_process(CONFIG)
    second = run_in_process({**CONFIG, **MARK}, state=out.last_state)
    assert second.count("acoustic_segment_data") == 0
    assert len(acoustic.calls("PUT")) == 3


def test_put_answering_false_keeps_the_job_for_the_next_run(acoustic, caplog):
    acoustic.put_answer = "false"
    with caplog.at_level(logging.WARNING):
        out = run_in_process({**CONFIG, **MARK})
    assert "answered false: job 101 is not marked complete" in caplog.text
    assert set(out.last_state["bookmarks"]["acoustic_segment_data"]["files_done"]) == {
        "101",
        "102",
        "103",
    }


def test_file_404_is_named_skipped_and_blocks_only_that_jobs_put(acoustic, caplog):
    del acoustic.files[("101", "101_a.csv")]
    with caplog.at_level(logging.WARNING):
        out = run_in_process({**CONFIG, **MARK})
    assert "job 101 file 101_a.csv answered 404" in caplog.text
    assert data_rows(out) == ALL_ROWS[2:]
    assert sorted(acoustic.calls("PUT")) == [
        "/api/v1/jobs/102/status/complete",
        "/api/v1/jobs/103/status/complete",
    ]
    files_done = out.last_state["bookmarks"]["acoustic_segment_data"]["files_done"]
    assert files_done == {"101": ["101_b.csv"]}


def test_row_not_matching_header_names_job_file_and_line(acoustic):
    acoustic.files[("102", "102_a.csv")] = b"email,country\nd@x.io,FR\nbroken@x.io\n"
    with pytest.raises(FileFormatError) as caught:
        run_in_process(CONFIG)
    assert "Acoustic Exchange job 102 file 102_a.csv, line 3" in str(caught.value)


def test_file_403_is_an_auth_error_not_a_skipped_file(acoustic):
    acoustic.mocker.get(
        re.compile(rf"{BASE}/v1/jobs/101/segmentDataFiles/.+"), status_code=403, text="no"
    )
    with pytest.raises(VendorAuthError, match="acoustic_auth_key") as caught:
        run_in_process(CONFIG)
    assert "key-abcd-5678" not in str(caught.value)


# -- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1471005788694, 1471005788694),
        ("1471005788694", 1471005788694),
        ("2016-08-12T12:43:08.694Z", 1471005788694),
        (None, None),
        ("", None),
    ],
)
def test_epoch_millis_accepts_every_date_shape(value, expected):
    assert epoch_millis(value) == expected


def test_job_date_that_is_no_date_names_the_job():
    with pytest.raises(MalformedResponseError, match="job 5 has started='yesterday', neither"):
        normalise_job({"jobId": 5, "started": "yesterday"}, "SEGMENT_EXPORT")


def test_job_dates_given_as_iso_text_become_epoch_millis():
    job = normalise_job({"jobId": 1, "started": "2016-08-12T12:43:08.694Z"}, "SEGMENT_EXPORT")
    assert job["started"] == 1471005788694
    assert job["started_iso"] == "2016-08-12T12:43:08.694+00:00"
    assert job["ended"] is None and job["ended_iso"] is None
    assert job["jobCategory"] == "SEGMENT_EXPORT"


@pytest.mark.parametrize(
    ("job", "names"),
    [
        ({"segmentDataFiles": ["a.csv", "b.csv"]}, ["a.csv", "b.csv"]),
        ({"segmentDateFiles": ["a.csv"]}, ["a.csv"]),
        ({"segmentDataFiles": None, "segmentDateFiles": ["a.csv"]}, ["a.csv"]),
        ({"segmentDataFiles": "a.csv"}, ["a.csv"]),
        ({"segmentDataFiles": None}, []),
        ({}, []),
    ],
)
def test_file_names_from_either_spelling(job, names):
    assert data_file_names(job) == names


def test_a_body_that_is_no_job_list_names_the_endpoint(acoustic):
    acoustic.mocker.get(re.compile(rf"{BASE}/v1/jobs/[A-Z_]+(\?.*)?$"), json={"jobs": "x"})
    with pytest.raises(MalformedResponseError, match=r"GET /api/v1/jobs/SEGMENT_EXPORT .*jobId"):
        run_in_process(CONFIG)


def test_a_bare_job_object_is_read_as_one_job(acoustic):
    acoustic.mocker.get(re.compile(rf"{BASE}/v1/jobs/[A-Z_]+(\?.*)?$"), json=job(7, "ERROR", 1))
    out = run_in_process(CONFIG)
    assert {j["jobId"] for j in out.records["acoustic_jobs"]} == {7}
