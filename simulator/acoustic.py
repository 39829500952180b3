"""Acoustic Exchange's jobs API, as shared/api-docs/acoustic-exchange-jobs.md says.

Bearer auth. Jobs of the three categories with the documented field set (``started`` and
``ended`` as epoch milliseconds, ``scheduleDetails`` only with ``extraFields=true``),
filters ``status`` and ``endpointId``; the one-job GET answers a one-element array, as the
doc shows. READY_FOR_DOWNLOAD SEGMENT_EXPORT jobs name 1-3 CSV files, each with its own
header. ``PUT /v1/jobs/{id}/status/complete`` marks a job COMPLETE and deletes its files.
The writer-side endpoints (upload data, fail, delete file, delete scheduled job) exist
too, so tests can prove the tap never calls them.
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t
from dataclasses import dataclass

from simulator import data
from simulator.server import Request, Response, VendorApp, error, json_response

CATEGORIES = ("SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB")
STARTED_BASE = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
HOUR_MS = 3_600_000
SEGMENT_EXPORT_STATUSES = (
    "READY_FOR_DOWNLOAD",
    "COMPLETE",
    "READY_FOR_DOWNLOAD",
    "WAITING_TO_RECIEVE_DATA",
)
OTHER_STATUSES = ("COMPLETE", "RUNNING", "ERROR")
DATA_COLUMNS = ("email", "firstName", "country")


@dataclass
class AcousticConfig:
    jobs_per_category: int = 4
    rows_per_file: tuple[int, int] = (5, 30)
    gzip: bool = False
    auth_key: str = "sim-acoustic-auth-key-secret"


class AcousticApp(VendorApp):
    prefix = "acoustic"
    name = "acoustic"

    def __init__(self, seed: int, config: AcousticConfig) -> None:
        super().__init__()
        self.seed = seed
        self.config = config
        self.lock = threading.Lock()
        self.jobs = [self._job(c, i) for c in CATEGORIES for i in range(config.jobs_per_category)]
        self.deleted_files: set[tuple[int, str]] = set()
        self.route("GET", "/v1/jobs/(?P<category>[A-Z_]+)", self.list_jobs)
        self.route("GET", r"/v1/jobs/(?P<category>[A-Z_]+)/(?P<job>\d+)", self.get_job)
        self.route("GET", r"/v1/jobs/(?P<job>\d+)/segmentDataFiles/(?P<file>[^/]+)", self.file)
        self.route(
            "DELETE", r"/v1/jobs/(?P<job>\d+)/segmentDat[ae]Files/(?P<file>[^/]+)", self.delete_file
        )
        self.route("PUT", r"/v1/jobs/(?P<job>\d+)/status/complete", self.complete)
        self.route("PUT", r"/v1/jobs/(?P<job>\d+)/status/fail", self.writer_only)
        self.route("POST", r"/v1/jobs/(?P<job>\d+)/data", self.writer_only)
        self.route("GET", "/v1/scheduledjobs/(?P<category>[A-Za-z_]+)", self.scheduled_jobs)
        self.route("DELETE", r"/v1/scheduledjobs/(?P<job>\d+)", self.writer_only)

    # -- data --------------------------------------------------------------------------------

    def _job(self, category: str, index: int) -> dict[str, t.Any]:
        job_id = 1000 * (CATEGORIES.index(category) + 1) + index
        r = data.rng(self.seed, "acoustic-job", job_id)
        statuses = SEGMENT_EXPORT_STATUSES if category == "SEGMENT_EXPORT" else OTHER_STATUSES
        status = statuses[index % len(statuses)]
        started = STARTED_BASE + index * 24 * HOUR_MS + r.randint(0, HOUR_MS)
        files = None
        if status == "READY_FOR_DOWNLOAD":
            files = [f"job{job_id}_part{n + 1}.csv" for n in range(1 + r.randrange(3))]
        counted = status == "COMPLETE"
        return {
            "jobCategory": category,
            "jobId": job_id,
            "scheduledJobId": 300 + index if index % 2 == 0 else None,
            "status": status,
            "jobName": "EXPORT_SEGMENT" if category == "SEGMENT_EXPORT" else category,
            "accountId": 2,
            "subStatus": None,
            "errorDetails": "destination rejected the file" if status == "ERROR" else None,
            "segmentDataFiles": files,
            "segmentDataFormat": "text/csv" if files else None,
            "destinationSegmentID": None,
            "destinationSegmentName": f"dest-segment-{job_id}",
            "destinationSegmentDescription": None,
            "destinationEndpointID": 7,
            "exportCategory": "mycat2",
            "producerEndpointID": 85 if index % 2 == 0 else 86,
            "producerSegmentIDString": f"seg-{job_id}",
            "producerSegmentID": 45000 + job_id,
            "updateIdentities": index % 2 == 1,
            "sourceIdentifiers": None,
            "destinationIdentifier": None,
            "attributeMappings": {},
            "identityMappings": {"Email": "workEmail"},
            "shareAction": None,
            "started": started,
            "ended": started + r.randint(1, 30) * 60_000 if status != "RUNNING" else None,
            "scheduleDetails": {
                "runNow": index % 2 == 0,
                "runRepeat": index % 3 == 0,
                "daysOfWeek": None,
                "daysOfMonth": None,
                "monthsOfYear": None,
                "year": None,
                "startHour": "02",
                "startMinute": "00",
                "startSecond": "00",
                "startDate": "2026-11-01",
                "endDate": None,
                "timeSliceStartDate": None,
                "timeSliceEndDate": None,
            },
            "translatedRecordCount": 27397 if counted else None,
            "sourceRecordCount": 27397 if counted else None,
            "destinationRecordCount": 27397 if counted else None,
        }

    def job(self, job_id: int) -> dict[str, t.Any] | None:
        return next((job for job in self.jobs if job["jobId"] == job_id), None)

    def rows_in(self, job_id: int, name: str) -> int:
        low, high = self.config.rows_per_file
        return data.rng(self.seed, "acoustic-file", job_id, name).randint(low, high)

    def file_rows(self, job_id: int, name: str) -> t.Iterator[dict[str, str]]:
        for index in range(self.rows_in(job_id, name)):
            member = data.member_row(self.seed, f"acoustic/{job_id}/{name}", index)
            yield {
                "email": member["email"],
                "firstName": member["note"],
                "country": member["country"],
            }

    # -- API ---------------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.config.auth_key}"

    def view(self, job: dict[str, t.Any], request: Request) -> dict[str, t.Any]:
        shown = dict(job)
        if request.arg("extraFields") != "true":
            for extra in ("started", "ended", "scheduleDetails"):
                shown.pop(extra)
        if request.arg("includeProducerSegmentIDString") is None:
            shown["producerSegmentIDString"] = None
        return shown

    def list_jobs(self, request: Request) -> Response:
        assert request.match is not None
        category = request.match["category"]
        if category not in CATEGORIES:
            return error(400, f"unknown job category {category}")
        status, endpoint = request.arg("status"), request.arg("endpointId")
        jobs = [
            self.view(job, request)
            for job in self.jobs
            if job["jobCategory"] == category
            and (status is None or job["status"] == status)
            and (endpoint is None or str(job["producerEndpointID"]) == endpoint)
        ]
        return json_response(jobs)

    def get_job(self, request: Request) -> Response:
        assert request.match is not None
        job = self.job(int(request.match["job"]))
        if job is None or job["jobCategory"] != request.match["category"]:
            return error(404, "job not found")
        return json_response([self.view(job, request)])  # a one-element array, as the doc shows

    def file(self, request: Request) -> Response:
        assert request.match is not None
        job_id, name = int(request.match["job"]), request.match["file"]
        job = self.job(job_id)
        if (
            job is None
            or name not in (job["segmentDataFiles"] or [])
            or (job_id, name) in self.deleted_files
        ):
            return error(404, "The job or file is unknown")
        chunks = data.csv_chunks(DATA_COLUMNS, self.file_rows(job_id, name))
        if self.config.gzip:
            return Response(200, data.gzip_chunks(chunks), content_type="application/gzip")
        return Response(200, chunks, content_type="text/csv")

    def complete(self, request: Request) -> Response:
        assert request.match is not None
        job = self.job(int(request.match["job"]))
        if job is None:
            return error(404, "job not found")
        with self.lock:
            job["status"] = "COMPLETE"
            for name in job["segmentDataFiles"] or []:
                self.deleted_files.add((job["jobId"], name))
        return Response(200, b"true", content_type="application/json")

    def writer_only(self, request: Request) -> Response:
        """Endpoints of a writer: present, so a test can see that a tap never calls them."""
        return Response(200, b"true", content_type="application/json")

    def delete_file(self, request: Request) -> Response:
        assert request.match is not None
        self.deleted_files.add((int(request.match["job"]), request.match["file"]))
        return Response(200, b"", content_type="application/json")

    def scheduled_jobs(self, request: Request) -> Response:
        assert request.match is not None
        if request.match["category"] != "SEGMENT_EXPORT":
            return error(400, "jobCategory must be SEGMENT_EXPORT")
        scheduled = [
            {
                "jobId": job["scheduledJobId"],
                "state": "SCHEDULED",
                "jobCategory": "SEGMENT_EXPORT",
                "jobName": "EXPORT_SEGMENT",
                "accountId": 2,
                "active": 1 if job["jobId"] % 2 == 0 else 2,
                "errorDetails": None,
            }
            for job in self.jobs
            if job["jobCategory"] == "SEGMENT_EXPORT" and job["scheduledJobId"] is not None
        ]
        return json_response(scheduled)

    # -- simulator plumbing ------------------------------------------------------------------

    def ready_files(self) -> list[tuple[int, str]]:
        return [
            (job["jobId"], name)
            for job in self.jobs
            if job["jobCategory"] == "SEGMENT_EXPORT" and job["status"] == "READY_FOR_DOWNLOAD"
            for name in job["segmentDataFiles"] or []
        ]

    def tap_config(self, base_url: str) -> dict[str, t.Any]:
        return {"acoustic_base_url": base_url, "acoustic_auth_key": self.config.auth_key}

    def truth(self, *, rerun: bool = False) -> dict[str, int]:
        scheduled = [
            j
            for j in self.jobs
            if j["jobCategory"] == "SEGMENT_EXPORT" and j["scheduledJobId"] is not None
        ]
        return {
            "acoustic_jobs": len(self.jobs),
            "acoustic_scheduled_jobs": len(scheduled),
            "acoustic_segment_data": sum(
                self.rows_in(job_id, name) for job_id, name in self.ready_files()
            ),
        }
