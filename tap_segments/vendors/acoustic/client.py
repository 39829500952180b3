"""Acoustic Exchange's base stream: the account's base URL, Bearer auth, the jobs vocabulary.

Doc: shared/api-docs/acoustic-exchange-jobs.md. Every call goes to the base URL assigned to
the account, with ``Authorization: Bearer <key>``. Jobs are listed per category; a
SEGMENT_EXPORT job that is READY_FOR_DOWNLOAD names its CSV files in ``segmentDataFiles``.
The doc disagrees with itself in places, and every variant it shows is accepted here.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from http import HTTPStatus
from urllib.parse import quote

from singer_sdk.authenticators import BearerTokenAuthenticator

from tap_segments.client import VendorStream
from tap_segments.errors import MalformedResponseError
from tap_segments.exports.engine import parse_timestamp

SEGMENT_EXPORT = "SEGMENT_EXPORT"
READY_FOR_DOWNLOAD = "READY_FOR_DOWNLOAD"
#: Statuses after which a job never changes again (the doc's status table).
FINAL_STATUSES = frozenset({"COMPLETE", "ERROR", "CANCELLED", "NOTFOUND"})

Job = dict[str, t.Any]


class AcousticStream(VendorStream):
    """Base of the Acoustic Exchange streams."""

    vendor_label = "Acoustic Exchange"
    credential_settings = ("acoustic_auth_key", "acoustic_base_url")
    # A file answering 403 means the key lacks access (an auth error), not an expired file.
    file_gone_statuses = (HTTPStatus.NOT_FOUND,)

    @property
    def url_base(self) -> str:
        return str(self.config["acoustic_base_url"]).rstrip("/")

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["acoustic_auth_key"])

    @property
    def job_categories(self) -> list[str]:
        """``acoustic_job_categories``, upper-cased (the API's words), without repeats."""
        categories = self.config.get("acoustic_job_categories") or ()
        return list(dict.fromkeys(str(c).strip().upper() for c in categories))

    def endpoint_filter(self) -> dict[str, str]:
        endpoint_id = self.config.get("acoustic_endpoint_id")
        return {"endpointId": str(endpoint_id)} if endpoint_id else {}

    def list_jobs(self, category: str, **params: str) -> list[Job]:
        """``GET /v1/jobs/{jobCategory}`` with ``extraFields=true``, normalised."""
        path = f"/v1/jobs/{quote(category, safe='')}"
        query = {"extraFields": "true", **self.endpoint_filter(), **params}
        body = self.send_json("GET", path, params=query)
        return [normalise_job(job, category) for job in self.job_list(body, f"GET {path}")]

    def get_job(self, category: str, job_id: str) -> Job | None:
        """``GET /v1/jobs/{jobCategory}/{jobId}``; None when the vendor no longer knows it."""
        path = f"/v1/jobs/{quote(category, safe='')}/{quote(job_id, safe='')}"
        response = self.send("GET", path, expected_statuses=(HTTPStatus.NOT_FOUND,))
        if response.status_code == HTTPStatus.NOT_FOUND:
            return None
        jobs = self.job_list(self.json_body(response), f"GET {path}")
        return normalise_job(jobs[0], category) if jobs else None

    def job_list(self, body: t.Any, where: str) -> list[Job]:
        """The jobs of an answer: an array, or one bare job object.

        The doc shows the one-job GET answering a one-element array; a bare object is
        accepted too.
        """
        jobs = [body] if isinstance(body, dict) else body
        if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
            raise MalformedResponseError(
                f"{self.vendor_label}: {where} did not answer a JSON array of job objects."
            )
        for job in jobs:
            if job.get("jobId") is None:
                raise MalformedResponseError(
                    f"{self.vendor_label}: {where} answered a job without a jobId."
                )
        return jobs


def epoch_millis(value: t.Any) -> int | None:
    """Epoch milliseconds from the doc's epoch-ms numbers, numeric strings or ISO-8601 text."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        return int(parse_timestamp(text).timestamp() * 1000)
    except ValueError as exc:
        raise MalformedResponseError(
            f"Acoustic Exchange: {value!r} is neither epoch milliseconds nor an ISO-8601 date."
        ) from exc


def iso_from_millis(millis: int | None) -> str | None:
    if millis is None:
        return None
    moment = dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


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
        millis = epoch_millis(job.get(field))
        job[field] = millis
        job[f"{field}_iso"] = iso_from_millis(millis)
    if job.get("segmentDataFiles") is None and job.get("segmentDateFiles") is not None:
        job["segmentDataFiles"] = data_file_names(job)
    return job
