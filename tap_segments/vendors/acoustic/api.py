"""Acoustic Exchange's client: the account's base URL, Bearer auth, jobs, files, mark complete.

Doc: shared/api-docs/acoustic-exchange-jobs.md. Every call goes to the base URL assigned to
the account, with ``Authorization: Bearer <key>`` (segment data files included: "provide the
authentication key for the account as the authorization bearer"). Jobs are listed per
category; a SEGMENT_EXPORT job that is READY_FOR_DOWNLOAD names its CSV files in
``segmentDataFiles`` (the DELETE example spells it ``segmentDateFiles``). The doc disagrees
with itself in places, and every variant it shows is accepted here:

- the endpoint filter is ``endpointID`` in the parameter table and ``endpointId`` in the
  examples: both are sent, and every job returned is checked against the endpoint, so the
  filter holds whichever spelling the server honours;
- ``started``/``ended`` are epoch milliseconds in the examples; ISO text is accepted too;
- the one-job GET answers a one-element array in the example; a bare object is accepted.

The only call that changes anything is ``PUT /v1/jobs/{jobId}/status/complete``, made only
with ``acoustic_mark_complete`` and only for jobs whose destination is
``acoustic_endpoint_id``.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from http import HTTPStatus
from urllib.parse import quote

from singer_sdk.authenticators import BearerTokenAuthenticator

from tap_segments.errors import MalformedResponseError, SettingsError
from tap_segments.exports.download import ExportFile
from tap_segments.exports.engine import ExportRequest, ExportStatus, PollResult
from tap_segments.exports.state import ExportJob
from tap_segments.http import endpoint_of
from tap_segments.timeutil import epoch_millis, iso_from_millis
from tap_segments.vendors.client import VendorClient

if t.TYPE_CHECKING:
    import logging

    from tap_segments.settings import CommonSettings
    from tap_segments.vendors.acoustic.settings import AcousticSettings

JOBS_PATH = "/v1/jobs/{jobCategory}"
JOB_PATH = "/v1/jobs/{jobCategory}/{jobId}"
FILE_PATH = "/v1/jobs/{jobId}/segmentDataFiles/{fileName}"
COMPLETE_PATH = "/v1/jobs/{jobId}/status/complete"
SCHEDULED_PATH = "/v1/scheduledjobs/{jobCategory}"
SEGMENT_EXPORT = "SEGMENT_EXPORT"
READY_FOR_DOWNLOAD = "READY_FOR_DOWNLOAD"
#: Statuses after which a job never changes again (the doc's status table).
FINAL_STATUSES = frozenset({"COMPLETE", "ERROR", "CANCELLED", "NOTFOUND"})
#: The fields that tie a job to an endpoint.
ENDPOINT_FIELDS = ("producerEndpointID", "destinationEndpointID")

Job = dict[str, t.Any]


def data_file_names(job: t.Mapping[str, t.Any]) -> list[str]:
    """The file names of a job: ``segmentDataFiles``, or the doc's ``segmentDateFiles`` typo."""
    names = job.get("segmentDataFiles")
    if names is None:
        names = job.get("segmentDateFiles")
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    return [str(name) for name in names if name]


def normalise_job(job: Job, category: str) -> Job:
    """Keep every vendor field; add ISO copies of ``started``/``ended``; fill the category.

    ``started``/``ended`` are epoch milliseconds in the doc; ISO text or numeric strings are
    turned into epoch milliseconds too, so the replication key always compares as a number.
    """
    job = dict(job)
    job.setdefault("jobCategory", category)
    for field in ("started", "ended"):
        try:
            millis = epoch_millis(job.get(field))
        except ValueError:
            raise MalformedResponseError(
                f"Acoustic Exchange: job {job.get('jobId')} has {field}={job.get(field)!r}, "
                "neither epoch milliseconds nor an ISO-8601 date."
            ) from None
        job[field] = millis
        job[f"{field}_iso"] = iso_from_millis(millis)
    if job.get("segmentDataFiles") is None and job.get("segmentDateFiles") is not None:
        job["segmentDataFiles"] = data_file_names(job)
    return job


class AcousticAPI(VendorClient):
    """One Acoustic Exchange account, as its streams read it."""

    vendor_label = "Acoustic Exchange"
    vendor_name = "acoustic"
    base_url_setting = "acoustic_base_url"
    settings: AcousticSettings

    def __init__(
        self, settings: AcousticSettings, common: CommonSettings, logger: logging.Logger
    ) -> None:
        if settings.mark_complete and not settings.endpoint_id:
            raise SettingsError(
                "Acoustic Exchange: acoustic_mark_complete needs acoustic_endpoint_id: marking "
                "a job complete deletes its files at Acoustic, so the tap marks only jobs whose "
                "destination is the endpoint it downloads for. Set acoustic_endpoint_id, or "
                "leave acoustic_mark_complete off."
            )
        self.base_url = settings.base_url.rstrip("/")
        super().__init__(settings, common, logger)
        self.ready_exports = ReadyExports(self)

    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.settings.auth_key)

    def api_base_urls(self) -> list[str]:
        return [self.base_url]

    def url(self, template: str, **values: t.Any) -> str:
        return self.base_url + template.format(
            **{k: quote(str(v), safe="") for k, v in values.items()}
        )

    def check(self) -> str:
        self.http.request(
            "GET", self.url(SCHEDULED_PATH, jobCategory=SEGMENT_EXPORT), endpoint=SCHEDULED_PATH
        )
        return f"GET {SCHEDULED_PATH.format(jobCategory=SEGMENT_EXPORT)}"

    def endpoint_params(self) -> dict[str, str]:
        """The endpoint filter in both documented spellings."""
        endpoint_id = self.settings.endpoint_id
        return {"endpointID": endpoint_id, "endpointId": endpoint_id} if endpoint_id else {}

    def job_list(self, body: t.Any, where: str) -> list[Job]:
        """The jobs of an answer: an array, or one bare job object."""
        jobs = [body] if isinstance(body, dict) else body
        if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
            raise self.http.malformed(where, "a JSON array of job objects")
        if any(job.get("jobId") is None for job in jobs):
            raise MalformedResponseError(
                f"Acoustic Exchange: {where} answered a job without a jobId."
            )
        return jobs

    # -- jobs --------------------------------------------------------------------------------

    def jobs(self, category: str) -> list[Job]:
        """``GET /v1/jobs/{jobCategory}?extraFields=true`` (one request per category per
        run), normalised, and only the configured endpoint's."""
        return self.once(("jobs", category), lambda: self._jobs(category))

    def _jobs(self, category: str) -> list[Job]:
        params = {
            "extraFields": "true",
            "includeProducerSegmentIDString": "true",
            **self.endpoint_params(),
        }
        url = self.url(JOBS_PATH, jobCategory=category)
        body = self.http.get_json(url, endpoint=JOBS_PATH, params=params)
        where = f"GET {endpoint_of(url)}"
        jobs = [normalise_job(j, category) for j in self.job_list(body, where)]
        return self.of_endpoint(jobs, category)

    def of_endpoint(self, jobs: list[Job], category: str) -> list[Job]:
        """The jobs of ``acoustic_endpoint_id`` (as producer or destination), whatever the
        server did with the filter."""
        endpoint_id = self.settings.endpoint_id
        if not endpoint_id:
            return jobs
        kept = [j for j in jobs if endpoint_id in {str(j.get(f)) for f in ENDPOINT_FIELDS}]
        if len(kept) < len(jobs):
            self.logger.info(
                "Acoustic Exchange: GET %s answered %d job(s) of other endpoints (the server "
                "ignored the endpoint filter); kept only endpoint %s's %d.",
                JOBS_PATH.format(jobCategory=category),
                len(jobs) - len(kept),
                endpoint_id,
                len(kept),
            )
        return kept

    def job(self, category: str, job_id: str) -> Job | None:
        """``GET /v1/jobs/{jobCategory}/{jobId}``; None when the vendor no longer knows it."""
        response = self.http.request(
            "GET",
            self.url(JOB_PATH, jobCategory=category, jobId=job_id),
            endpoint=JOB_PATH,
            expected=(HTTPStatus.NOT_FOUND,),
        )
        if response.status_code == HTTPStatus.NOT_FOUND:
            return None
        body = self.http.json_body(response)
        jobs = self.job_list(body, f"GET {endpoint_of(response.url)}")
        return normalise_job(jobs[0], category) if jobs else None

    def scheduled_jobs(self, category: str) -> list[Job]:
        """``GET /v1/scheduledjobs/{jobcategory}``. The doc says the category "Must be
        SEGMENT_EXPORT"; for any other configured category a 400/404 means "no scheduled
        jobs there", not a failed run."""
        tolerated: tuple[int, ...] = ()
        if category != SEGMENT_EXPORT:
            tolerated = (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND)
        params = {"endpointId": self.settings.endpoint_id} if self.settings.endpoint_id else {}
        response = self.http.request(
            "GET",
            self.url(SCHEDULED_PATH, jobCategory=category),
            endpoint=SCHEDULED_PATH,
            params=params,
            expected=tolerated,
        )
        if response.status_code in tolerated:
            self.logger.info(
                "Acoustic Exchange: GET %s answered %d: no scheduled jobs in category %s.",
                SCHEDULED_PATH.format(jobCategory=category),
                response.status_code,
                category,
            )
            return []
        where = f"GET {endpoint_of(response.url)}"
        jobs = self.job_list(self.http.json_body(response), where)
        return [{"jobCategory": category, **job} for job in jobs]

    # -- files -------------------------------------------------------------------------------

    def data_file(self, job: Job, name: str) -> ExportFile:
        """``GET /v1/jobs/{jobId}/segmentDataFiles/{fileName}``, on the API (Bearer key)."""
        data_format = str(job.get("segmentDataFormat") or "text/csv")
        return ExportFile(
            url=self.url(FILE_PATH, jobId=job["jobId"], fileName=name),
            name=f"Acoustic Exchange job {job['jobId']} file {name}",
            format="csv" if "csv" in data_format.lower() else None,
            # A 403 means the key lacks access (an auth error), not an expired file.
            gone_statuses=(HTTPStatus.NOT_FOUND,),
            file_name=name,
        )

    def may_mark_complete(self, job: Job) -> bool:
        """``acoustic_mark_complete`` is set and the job's destination is our endpoint."""
        return self.settings.mark_complete and str(job.get("destinationEndpointID")) == str(
            self.settings.endpoint_id
        )

    def mark_complete(self, job_id: str) -> bool:
        """``PUT /v1/jobs/{jobId}/status/complete``: the only call that changes vendor data.

        The doc says a 2xx answers "True" when marked, "False" when not.
        """
        response = self.http.request(
            "PUT", self.url(COMPLETE_PATH, jobId=job_id), endpoint=COMPLETE_PATH
        )
        return response.text.strip().strip('"').lower() != "false"


class ReadyExports:
    """READY_FOR_DOWNLOAD jobs as exports for the shared engine: nothing to trigger (the job
    exists at Acoustic already) and nothing to poll (its files are listed)."""

    vendor_label = "Acoustic Exchange"
    vendor_name = "acoustic"
    export_retention: dt.timedelta | None = None
    #: Adopted jobs are not "in flight": a restart finds them listed again.
    triggers_jobs = False

    def __init__(self, api: AcousticAPI) -> None:
        self.api = api

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        job: Job = request.params["job"]
        # Adopted now: the export timeout counts from here, not from the job's own start.
        return ExportJob.new(request.key, str(job["jobId"]), job=job)

    def poll_export(self, job: ExportJob) -> PollResult:
        """The job's files; when the list left them out, the one-job GET is asked."""
        listed: Job = job.data.get("job") or {}
        names = data_file_names(listed)
        if not names:
            detail = self.api.job(SEGMENT_EXPORT, job.job_id)
            names = data_file_names(detail or {})
            listed = {**listed, **(detail or {})}
        files = [self.api.data_file(listed or {"jobId": job.job_id}, name) for name in names]
        return PollResult(ExportStatus.COMPLETED, files=files, detail=listed)
