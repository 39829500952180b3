"""Acoustic Exchange's jobs API, as shared/api-docs/acoustic-exchange-jobs.md says (cited
below as ``acoustic-exchange-jobs.md:<line>``).

Bearer auth. Jobs of the three categories with the documented field set (``started`` and
``ended`` as epoch milliseconds, ``scheduleDetails`` only with ``extraFields=true``),
filters ``status`` and the endpoint; the one-job GET answers a one-element array, as the
doc shows. READY_FOR_DOWNLOAD SEGMENT_EXPORT jobs name 1-3 CSV files, each with its own
header, served here on the API with the Bearer key (acoustic-exchange-jobs.md:359
"provide the authentication key for the account as the authorization bearer"). ``PUT
/v1/jobs/{id}/status/complete`` marks a job COMPLETE and deletes its files. The
writer-side endpoints (upload data, fail, delete file, delete scheduled job) exist too, so
tests can prove the tap never calls them.

Where the doc disagrees with itself, ``AcousticConfig`` switches between the readings: the
endpoint filter is ``endpointID`` in the parameter table (acoustic-exchange-jobs.md:41) and
``endpointId`` in the examples (acoustic-exchange-jobs.md:27, 30, 62): the server honours
one spelling and ignores the other, as a real server would, so every endpoint's jobs come
back; the list example (acoustic-exchange-jobs.md:67-110) lacks ``subStatus``,
``errorDetails`` and ``shareAction`` that the one-job example (183-218) has.
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t
from dataclasses import dataclass

from simulator import data
from simulator.server import Request, Response, VendorApp, error, json_response

CATEGORIES = ("SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB")
HOUR_MS = 3_600_000


def started_base() -> int:
    """Epoch ms two days before midnight (UTC) of today: jobs start in the last two days.

    our choice: relative to the day the simulator runs, so that a start_date a few days back
    keeps them on any date; the same all day, so two simulators of one seed agree.
    """
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((today - dt.timedelta(days=2)).timestamp() * 1000)


SEGMENT_EXPORT_STATUSES = (
    "READY_FOR_DOWNLOAD",
    "COMPLETE",
    "READY_FOR_DOWNLOAD",
    "WAITING_TO_RECIEVE_DATA",
)
OTHER_STATUSES = ("COMPLETE", "RUNNING", "ERROR")
DATA_COLUMNS = ("email", "firstName", "country")


def iso_of_millis(millis: int) -> str:
    """Epoch milliseconds as ``2026-11-01T00:12:34.567Z``."""
    return data.iso_millis(dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc))


# acoustic-exchange-jobs.md:44-52, every documented status (the doc's RECIEVE typo kept)
ALL_STATUSES = (
    "WAITING_TO_RECIEVE_DATA",
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "COMPLETE",
    "ERROR",
    "CANCELLED",
    "NOTFOUND",
    "READY_FOR_DOWNLOAD",
)
#: Fields of the one-job example (acoustic-exchange-jobs.md:190-208) that the list example (67-110)
#: lacks.
LIST_EXAMPLE_OMITS = ("subStatus", "errorDetails", "shareAction")
DESTINATION = 7  # acoustic-exchange-jobs.md:80, 198 "destinationEndpointID":7
OTHER_DESTINATION = 8  # our choice: another pull destination of the same account


@dataclass
class AcousticConfig:
    jobs_per_category: int = 4
    rows_per_file: tuple[int, int] = (5, 30)
    gzip: bool = False
    auth_key: str = "sim-acoustic-auth-key-secret"
    #: The filter spelling honoured on GET /v1/jobs/{category}: "endpointId"
    #: (acoustic-exchange-jobs.md:27, 30, 62) or "endpointID" (acoustic-exchange-jobs.md:41); the
    #: other is ignored. Scheduled jobs take only "endpointId" (acoustic-exchange-jobs.md:497, the
    #: one spelling their doc uses).
    endpoint_param: str = "endpointId"
    #: The endpoint the tap is configured with (``acoustic_endpoint_id``); None: no filter. A job
    #: belongs to an endpoint that produces it or is its destination (our choice: line 34 "waiting
    #: for endpoint 85 to upload" filters on the producer, acoustic-exchange-jobs.md:52 "ready to be
    #: downloaded to an endpoint" on the destination).
    endpoint_id: int | None = None
    #: Some jobs are for another destination endpoint (8) of the account.
    other_destination_jobs: bool = False
    #: ``started``/``ended``: "epoch_ms" (acoustic-exchange-jobs.md:91-92, 212) or "iso" (our
    #: choice: the ISO strings SPEC lists among the vendors' date forms; the Acoustic doc shows
    #: none).
    dates: str = "epoch_ms"
    #: GET /v1/jobs/{category}/{jobId}: "array" (acoustic-exchange-jobs.md:183-218, a one-element
    #: array) or "object" (our choice: the one job alone).
    one_job_shape: str = "array"
    #: Job fields: "full" (the one-job example's set) or "list_example" (lists leave out
    #: ``LIST_EXAMPLE_OMITS``, as the list example does).
    field_set: str = "full"
    #: Statuses cycle over every documented status, not only the usual few.
    all_statuses: bool = False
    #: PUT .../status/complete answers true (acoustic-exchange-jobs.md:425 "True: The job is marked
    #: complete") or, with False, false and changes nothing (acoustic-exchange-jobs.md:427 "False:
    #: The job is not marked complete or all files are not deleted.").
    complete_succeeds: bool = True
    #: The file download path: "segmentDataFiles" (acoustic-exchange-jobs.md:339, 366),
    #: "segmentDateFiles" (our choice: the typo of acoustic-exchange-jobs.md:315's DELETE example
    #: applied to GET) or "both".
    files_path: str = "segmentDataFiles"


class AcousticApp(VendorApp):
    prefix = "acoustic"
    name = "acoustic"

    def __init__(self, seed: int, config: AcousticConfig) -> None:
        super().__init__()
        self.seed = seed
        self.config = config
        self.lock = threading.Lock()
        self.jobs = [self._job(c, i) for c in CATEGORIES for i in range(config.jobs_per_category)]
        if config.other_destination_jobs:
            self._spread_destinations()
        self.deleted_files: set[tuple[int, str]] = set()
        self.completed: list[int] = []  # jobs PUT .../status/complete was called for
        self.route("GET", "/v1/jobs/(?P<category>[A-Z_]+)", self.list_jobs)
        self.route("GET", r"/v1/jobs/(?P<category>[A-Z_]+)/(?P<job>\d+)", self.get_job)
        files = r"/v1/jobs/(?P<job>\d+)/(?P<kind>segmentDat[ae]Files)/(?P<file>[^/]+)"
        self.route("GET", files, self.file)
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
        if self.config.all_statuses:  # READY_FOR_DOWNLOAD first, then the others in turn
            statuses = ALL_STATUSES[-1:] + ALL_STATUSES[:-1]
        status = statuses[index % len(statuses)]
        started = started_base() + index * 2 * HOUR_MS + r.randint(0, HOUR_MS)
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
            "destinationEndpointID": DESTINATION,
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

    def _spread_destinations(self) -> None:
        """Every second job of each category (so every second ready one) is for endpoint 8."""
        for category in CATEGORIES:
            ready = [j for j in self.jobs if j["jobCategory"] == category and j["segmentDataFiles"]]
            others = [j for j in self.jobs if j["jobCategory"] == category and j not in ready]
            for group in (ready, others):
                for job in group[1::2]:
                    job["destinationEndpointID"] = OTHER_DESTINATION

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

    def view(self, job: dict[str, t.Any], request: Request, *, listed: bool) -> dict[str, t.Any]:
        shown = dict(job)
        # acoustic-exchange-jobs.md:55 "extraFields ... set to true, the call returns additional
        # schedule information, such as started, ended, and scheduleDetails"
        if request.arg("extraFields") != "true":
            for extra in ("started", "ended", "scheduleDetails"):
                shown.pop(extra)
        elif self.config.dates == "iso":
            for moment in ("started", "ended"):
                if shown[moment] is not None:
                    shown[moment] = iso_of_millis(shown[moment])
        # acoustic-exchange-jobs.md:54 "pass this parameter to return producerSegmentIDString"
        if request.arg("includeProducerSegmentIDString") is None:
            shown["producerSegmentIDString"] = None
        if listed and self.config.field_set == "list_example":
            for name in LIST_EXAMPLE_OMITS:
                shown.pop(name)
        return shown

    @staticmethod
    def of_endpoint(job: dict[str, t.Any], endpoint: str | None) -> bool:
        """Whether ``job`` belongs to ``endpoint`` (None: any), as producer or destination."""
        ids = (str(job["producerEndpointID"]), str(job["destinationEndpointID"]))
        return endpoint is None or endpoint in ids

    def list_jobs(self, request: Request) -> Response:
        assert request.match is not None
        category = request.match["category"]
        if category not in CATEGORIES:
            return error(400, f"unknown job category {category}")
        status, endpoint = request.arg("status"), request.arg(self.config.endpoint_param)
        jobs = [
            self.view(job, request, listed=True)
            for job in self.jobs
            if job["jobCategory"] == category
            and (status is None or job["status"] == status)
            and self.of_endpoint(job, endpoint)
        ]
        return json_response(jobs)

    def get_job(self, request: Request) -> Response:
        assert request.match is not None
        job = self.job(int(request.match["job"]))
        if job is None or job["jobCategory"] != request.match["category"]:
            return error(404, "job not found")
        shown = self.view(job, request, listed=False)
        if self.config.one_job_shape == "object":
            return json_response(shown)
        return json_response([shown])  # a one-element array, as the doc shows

    def file(self, request: Request) -> Response:
        assert request.match is not None
        job_id, name = int(request.match["job"]), request.match["file"]
        job = self.job(job_id)
        if self.config.files_path not in ("both", request.match["kind"]):
            return error(404, f"no route for GET {request.path}")
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
            self.completed.append(job["jobId"])
            if not self.config.complete_succeeds:
                return Response(200, b"false", content_type="application/json")
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
            return error(400, "jobCategory must be SEGMENT_EXPORT")  # acoustic-exchange-jobs.md:496
        endpoint = request.arg("endpointId")  # acoustic-exchange-jobs.md:497 "endpointIdOptional"
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
            for job in self.scheduled_of(endpoint)
        ]
        return json_response(scheduled)

    def scheduled_of(self, endpoint: str | None) -> list[dict[str, t.Any]]:
        """SEGMENT_EXPORT jobs that have a scheduled job, of ``endpoint`` (None: any)."""
        return [
            job
            for job in self.jobs
            if job["jobCategory"] == "SEGMENT_EXPORT"
            and job["scheduledJobId"] is not None
            and self.of_endpoint(job, endpoint)
        ]

    # -- simulator plumbing ------------------------------------------------------------------

    @property
    def endpoint(self) -> str | None:
        return None if self.config.endpoint_id is None else str(self.config.endpoint_id)

    def ready_files(self) -> list[tuple[int, str]]:
        """Files of READY_FOR_DOWNLOAD SEGMENT_EXPORT jobs of the configured endpoint."""
        return [
            (job["jobId"], name)
            for job in self.jobs
            if job["jobCategory"] == "SEGMENT_EXPORT"
            and job["status"] == "READY_FOR_DOWNLOAD"
            and self.of_endpoint(job, self.endpoint)
            for name in job["segmentDataFiles"] or []
        ]

    def tap_config(self, base_url: str) -> dict[str, t.Any]:
        config: dict[str, t.Any] = {
            "acoustic_base_url": base_url,
            "acoustic_auth_key": self.config.auth_key,
        }
        if self.config.endpoint_id is not None:
            config["acoustic_endpoint_id"] = str(self.config.endpoint_id)
        return config

    def truth(self, *, rerun: bool = False) -> dict[str, int]:
        """What a correct tap emits: only the configured endpoint's jobs, whichever filter
        spelling the server honours."""
        return {
            "acoustic_jobs": sum(self.of_endpoint(job, self.endpoint) for job in self.jobs),
            "acoustic_scheduled_jobs": len(self.scheduled_of(self.endpoint)),
            "acoustic_segment_data": sum(
                self.rows_in(job_id, name) for job_id, name in self.ready_files()
            ),
        }
