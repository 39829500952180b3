"""Artisan's base stream: base URL, the two auth headers, and the job vocabulary.

Docs: shared/api-docs/artisan-rest-api.md and artisan-ruby-gem.md. They disagree on job
objects: the REST doc wraps each job (``{"jobs": [{"jobs": {"_id": ...}}]}``), the gem doc
lists flat jobs with ``id``; statuses come as ``completed`` / ``COMPLETE`` / ``COMPLETED``.
Every variant is accepted and normalised here (``_id`` kept as ``id``, status upper-cased).
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus
from urllib.parse import urlparse

from singer_sdk.authenticators import SimpleAuthenticator

from tap_segments.client import VendorStream
from tap_segments.exports.engine import ExportFile, ExportStatus, PollResult, map_status

APPS_PATH = "/public/api/apps"  # the gem's list_apps; not in the REST doc
JOBS_PATH = "/public/api/jobs"
RUNNING = ("QUEUED", "RUNNING", "PENDING", "IN_PROGRESS")
DONE = ("COMPLETED", "COMPLETE")  # the REST doc says COMPLETED, the gem doc COMPLETE
FAILED = ("FAILED", "ERROR")


def with_id(item: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of an Artisan object with its Mongo-style ``_id`` kept as ``id``."""
    item = dict(item)
    if "_id" in item:
        item["id"] = item.pop("_id")
    return item


def normalize_job(item: t.Any) -> dict[str, t.Any]:
    """One job object from any documented shape: unwrapped, ``id`` set, status upper-cased."""
    job = item
    while isinstance(job, dict) and set(job) <= {"jobs", "job"} and job:
        job = next(iter(job.values()))
    if not isinstance(job, dict):
        return {}
    job = with_id(job)
    if isinstance(job.get("status"), str):
        job["status"] = job["status"].upper()
    return job


def job_list(body: t.Any) -> list[dict[str, t.Any]]:
    """``{"jobs": [...]}`` (wrapped or flat items) or a bare list, as job objects."""
    items = body.get("jobs") if isinstance(body, dict) else body
    if isinstance(items, dict):  # a single wrapped job
        items = [items]
    return [job for job in map(normalize_job, items or []) if job]


class ArtisanStream(VendorStream):
    """Base of the Artisan streams."""

    vendor_label = "Artisan"
    credential_settings = ("artisan_public_api_key", "artisan_secret_api_key")

    @property
    def url_base(self) -> str:
        return str(self.config.get("artisan_base_url", "https://artisantools.com")).rstrip("/")

    @property
    def authenticator(self) -> SimpleAuthenticator:
        secret = self.config["artisan_secret_api_key"]
        return SimpleAuthenticator(
            auth_headers={
                "Authorization": f'Token token="{secret}"',
                "public-api-key": self.config["artisan_public_api_key"],
            }
        )

    @property
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    def list_apps(self) -> list[dict[str, t.Any]]:
        body = self.send_json("GET", APPS_PATH)
        apps = body.get("apps") if isinstance(body, dict) else body
        if not isinstance(apps, list):
            raise self.malformed(f"GET {APPS_PATH}", 'an object with a list of "apps"')
        wanted = set(self.config.get("artisan_app_ids") or [])
        return [app for app in apps if not wanted or str(app.get("id")) in wanted]

    def list_segments(self, app_id: str) -> list[dict[str, t.Any]]:
        path = f"{APPS_PATH}/{app_id}/segments/"
        body = self.send_json("GET", path)
        segments = body.get("segments") if isinstance(body, dict) else body
        if not isinstance(segments, list):
            raise self.malformed(f"GET {path}", "a list of segments")
        return [with_id(s) | {"app_id": app_id} for s in segments if isinstance(s, dict)]

    def job_status(self, job_id: str, description: str) -> PollResult:
        """``GET /public/api/jobs/{job_id}``, flat or wrapped; 404 means the job is gone."""
        path = f"{JOBS_PATH}/{job_id}"
        response = self.send("GET", path, expected_statuses=(HTTPStatus.NOT_FOUND,))
        if response.status_code == HTTPStatus.NOT_FOUND:
            return PollResult(ExportStatus.GONE)
        job = normalize_job(self.json_body(response))
        where = f"Artisan: GET {path} ({description})"
        status = map_status(
            job.get("status"), where=where, running=RUNNING, completed=DONE, failed=FAILED
        )
        files = []
        if status is ExportStatus.COMPLETED:
            if not job.get("result_url"):
                raise self.malformed(f"GET {path}", f"a result_url for done job {job_id}")
            files = [self.result_file(job_id, str(job["result_url"]))]
        return PollResult(status, files=files, detail=job, message=job.get("status"))

    def result_file(self, job_id: str, result_url: str) -> ExportFile:
        url = self.absolute_url(result_url)
        base, target = urlparse(self.url_base), urlparse(url)
        same_host = (target.scheme, target.netloc) == (base.scheme, base.netloc)
        name = f"Artisan job {job_id} result {target.path.rsplit('/', 1)[-1]}"
        return ExportFile(url=url, name=name, authenticated=same_host)

    @staticmethod
    def triggered_job_id(answer: t.Any) -> str | None:
        """The job id of an export request's answer (undocumented shape: any of these)."""
        if not isinstance(answer, dict):
            return None
        for key in ("job_id", "jobId", "id", "_id"):
            if answer.get(key):
                return str(answer[key])
        job = normalize_job(answer.get("job") or answer.get("jobs") or answer.get("response"))
        return str(job["id"]) if job.get("id") else None
