"""Artisan's client: the two key headers, apps, segments, jobs, profiles and exports.

Docs: shared/api-docs/artisan-rest-api.md (REST) and artisan-ruby-gem.md (the vendor's Ruby
client, which adds ``list_apps`` and ``download_job``). They disagree on job objects: the
REST doc wraps each job (``{"jobs": [{"jobs": {"_id": ...}}]}``), the gem lists flat jobs
with ``id`` and no ``updated_at``; statuses come as ``completed`` / ``COMPLETE`` /
``COMPLETED``. Every variant is accepted and normalised here (``_id`` kept as ``id``, status
upper-cased). An export job reported complete while its ``result_url`` is still null (the
REST doc's own sample) is polled again until the URL appears.

The apps list is only in the gem (``list_apps``; its HTTP path, ``GET /public/api/apps``,
is not documented): with ``artisan_app_ids`` set, no other stream needs it.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import quote, urljoin, urlsplit

from tap_segments.errors import MalformedResponseError, SettingsError
from tap_segments.exports.download import ExportFile
from tap_segments.exports.engine import (
    ExportRequest,
    ExportStatus,
    PollResult,
    StatusMapping,
    status_words,
)
from tap_segments.exports.state import ExportJob
from tap_segments.http import HeaderAuthenticator
from tap_segments.vendors.client import VendorClient

if t.TYPE_CHECKING:
    import logging

    from tap_segments.settings import CommonSettings
    from tap_segments.vendors.artisan.settings import ArtisanSettings

APPS_PATH = "/public/api/apps"  # the gem's list_apps; not in the REST doc
SEGMENTS_PATH = "/public/api/apps/{app_id}/segments/"
SEGMENT_EXPORT_PATH = "/public/api/apps/{app_id}/segments/{segment_id}"
PROFILE_EXPORT_PATH = "/public/api/apps/{app_id}/users/export"
USERS_PATH = "/public/api/apps/{app_id}/users"
JOBS_PATH = "/public/api/jobs"
JOB_PATH = "/public/api/jobs/{job_id}"
#: REST doc: "queued, running, completed, or failed"; gem: QUEUED, RUNNING, COMPLETE, FAILED;
#: "Getting Jobs By Status": QUEUED, RUNNING, COMPLETED, FAILED.
JOB_STATUSES = StatusMapping(
    running=status_words("QUEUED", "RUNNING", "PENDING", "IN_PROGRESS"),
    completed=status_words("COMPLETED", "COMPLETE"),
    failed=status_words("FAILED", "ERROR"),
)
#: The fields a flat job may carry its time in, newest first (the gem's flat shape has no
#: ``updated_at``: "id, type, created_at, start, end, status").
JOB_TIME_FIELDS = ("updated_at", "end", "start", "created_at")


def with_id(item: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of an Artisan object with its Mongo-style ``_id`` kept as ``id``."""
    item = dict(item)
    if "_id" in item:
        item["id"] = item.pop("_id")
    return item


def unwrap(body: t.Any) -> t.Any:
    """The payload of the gem's ``{"success": true, "response": ...}`` wrapper, if any."""
    if isinstance(body, dict) and "response" in body and set(body) <= {"success", "response"}:
        return body["response"]
    return body


def normalize_job(item: t.Any) -> dict[str, t.Any]:
    """One job object from any documented shape: unwrapped, ``id`` set, status upper-cased."""
    job = unwrap(item)
    while isinstance(job, dict) and job and set(job) <= {"jobs", "job"}:
        job = next(iter(job.values()))
    if not isinstance(job, dict):
        return {}
    job = with_id(job)
    if isinstance(job.get("status"), str):
        job["status"] = job["status"].upper()
    return job


def job_list(body: t.Any) -> list[dict[str, t.Any]]:
    """``{"jobs": [...]}`` (wrapped or flat items) or a bare list, as job objects."""
    body = unwrap(body)
    items = body.get("jobs") if isinstance(body, dict) else body
    if isinstance(items, dict):  # a single wrapped job
        items = [items]
    return [job for job in map(normalize_job, items or []) if job]


def triggered_job_id(answer: t.Any) -> str | None:
    """The job id of an export request's answer (its shape is not documented: the gem says
    it "contains the job ID"): ``job_id``, ``jobId``, ``id``, ``_id``, wrapped or not."""
    answer = unwrap(answer)
    if not isinstance(answer, dict):
        return None
    for key in ("job_id", "jobId", "id", "_id"):
        if answer.get(key):
            return str(answer[key])
    job = normalize_job(answer.get("job") or answer.get("jobs"))
    return str(job["id"]) if job.get("id") else None


class ArtisanAPI(VendorClient):
    """One Artisan organisation, as its streams read it."""

    vendor_label = "Artisan"
    vendor_name = "artisan"
    settings: ArtisanSettings

    base_url_setting = "artisan_base_url"
    headers: t.ClassVar[dict[str, str]] = {"Accept": "application/json"}

    def __init__(
        self, settings: ArtisanSettings, common: CommonSettings, logger: logging.Logger
    ) -> None:
        self.base_url = settings.base_url.rstrip("/")
        super().__init__(settings, common, logger)
        self.segment_exports = ArtisanExports(self, SEGMENT_EXPORT_PATH)
        self.profile_exports = ArtisanExports(self, PROFILE_EXPORT_PATH)

    def authenticator(self) -> HeaderAuthenticator:
        return HeaderAuthenticator(
            {
                "Authorization": f'Token token="{self.settings.secret_api_key}"',
                "public-api-key": self.settings.public_api_key,
            }
        )

    def api_base_urls(self) -> list[str]:
        return [self.base_url]

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, template: str, **kwargs: t.Any) -> t.Any:
        """GET a documented path (``template`` filled from ``kwargs``'s path values)."""
        params = kwargs.pop("params", None)
        path = template.format(**{k: quote(str(v), safe="") for k, v in kwargs.items()})
        return self.http.get_json(self.url(path), endpoint=template, params=params)

    def check(self) -> str:
        if self.settings.app_ids:
            self.segments(self.settings.app_ids[0])
            return f"GET {SEGMENTS_PATH}"
        self.apps()
        return f"GET {APPS_PATH}"

    # -- apps and segments ---------------------------------------------------------------

    def apps(self) -> list[dict[str, t.Any]]:
        """The organisation's apps, limited to ``artisan_app_ids`` when set (one request)."""
        return self.once("apps", self._apps)

    def _apps(self) -> list[dict[str, t.Any]]:
        response = self.http.request(
            "GET", self.url(APPS_PATH), endpoint=APPS_PATH, expected=(404, 405)
        )
        if response.status_code in (404, 405):
            return self._apps_not_listed(response.status_code)
        body = unwrap(self.http.json_body(response))
        apps = body.get("apps") if isinstance(body, dict) else body
        if not isinstance(apps, list):
            raise self.http.malformed(f"GET {APPS_PATH}", 'an object with a list of "apps"')
        wanted = set(self.settings.app_ids)
        apps = [with_id(app) for app in apps if isinstance(app, dict)]
        return [app for app in apps if not wanted or str(app.get("id")) in wanted]

    def _apps_not_listed(self, status: int) -> list[dict[str, t.Any]]:
        """The apps list's path is only implied by the gem's ``list_apps``: a server without
        it is not an error when ``artisan_app_ids`` says which apps to read."""
        if not self.settings.app_ids:
            raise SettingsError(
                f"Artisan: GET {APPS_PATH} answered {status}: this Artisan API does not list "
                "apps (that call is documented only by the Ruby gem). Set artisan_app_ids to "
                "the apps to read."
            )
        self.logger.warning(
            "Artisan: GET %s answered %d (the apps list is documented only by the Ruby gem); "
            "artisan_apps emits the apps of artisan_app_ids, without their names.",
            APPS_PATH,
            status,
        )
        return [{"id": app_id, "name": None} for app_id in self.settings.app_ids]

    def app_ids(self) -> list[str]:
        """``artisan_app_ids`` when set (no request), else the ids of the apps list."""
        if self.settings.app_ids:
            return list(self.settings.app_ids)
        return [str(app["id"]) for app in self.apps() if app.get("id")]

    def segments(self, app_id: str) -> list[dict[str, t.Any]]:
        """``GET /public/api/apps/{app_id}/segments/`` (one request per app per run)."""
        return self.once(("segments", app_id), lambda: self._segments(app_id))

    def _segments(self, app_id: str) -> list[dict[str, t.Any]]:
        body = unwrap(self.get(SEGMENTS_PATH, app_id=app_id))
        segments = body.get("segments") if isinstance(body, dict) else body
        if not isinstance(segments, list):
            path = SEGMENTS_PATH.format(app_id=app_id)
            raise self.http.malformed(f"GET {path}", "a list of segments")
        return [with_id(s) | {"app_id": app_id} for s in segments if isinstance(s, dict)]

    # -- jobs and profiles ----------------------------------------------------------------

    def jobs(self) -> list[dict[str, t.Any]]:
        """``GET /public/api/jobs``, every documented shape, normalised."""
        return job_list(self.get(JOBS_PATH))

    def profiles(self, app_id: str, source: str, ids: list[str]) -> list[dict[str, t.Any]]:
        """``GET /public/api/apps/{app_id}/users?ids=...`` (``source=custom`` for Shared User
        IDs); the answer may be a list, one profile, or the gem's wrapper of either."""
        params = {"ids": ",".join(ids), **({"source": "custom"} if source == "custom" else {})}
        found = unwrap(self.get(USERS_PATH, app_id=app_id, params=params))
        profiles = found if isinstance(found, list) else [found]
        return [p for p in profiles if isinstance(p, dict) and p.get("identifier")]

    # -- exports ---------------------------------------------------------------------------

    def job_status(self, job: ExportJob) -> PollResult:
        """``GET /public/api/jobs/{job_id}``, flat or wrapped; 404 means the job is gone."""
        path = JOB_PATH.format(job_id=quote(job.job_id, safe=""))
        response = self.http.request("GET", self.url(path), endpoint=JOB_PATH, expected=(404,))
        if response.status_code == 404:
            return PollResult(ExportStatus.GONE)
        detail = normalize_job(self.http.json_body(response))
        if not detail:
            raise self.http.malformed(f"GET {path}", "a job object")
        return JOB_STATUSES.result(
            detail.get("status"),
            f"Artisan: GET {path} (export of {job.key})",
            lambda: self.result_files(job.job_id, detail.get("result_url")),
            detail,
            "result_url",
        )

    def result_files(self, job_id: str, result_url: t.Any) -> list[ExportFile]:
        if not result_url:
            return []
        url = urljoin(self.base_url + "/", str(result_url))
        name = f"Artisan job {job_id} result {urlsplit(url).path.rsplit('/', 1)[-1]}"
        return [ExportFile(url=url, name=name)]


class ArtisanExports:
    """Artisan's segment or profile exports, for the shared engine (``ExportAPI``)."""

    vendor_label = "Artisan"
    vendor_name = "artisan"
    export_retention: dt.timedelta | None = None  # not documented
    triggers_jobs = True

    def __init__(self, api: ArtisanAPI, trigger_path: str) -> None:
        self.api = api
        self.trigger_path = trigger_path

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        """``POST`` the export; ``{"callbackUrl": ...}`` only when one is configured."""
        values = {k: quote(str(v), safe="") for k, v in request.params.items()}
        path = self.trigger_path.format(**values)
        callback = self.api.settings.callback_url
        response = self.api.http.request(
            "POST",
            self.api.url(path),
            endpoint=self.trigger_path,
            json_body={"callbackUrl": callback} if callback else None,
        )
        job_id = triggered_job_id(self.api.http.json_body(response))
        if not job_id:
            raise MalformedResponseError(
                f"Artisan: POST {path} did not answer a job id (for {request.key})."
            )
        return ExportJob.new(request.key, job_id)

    def poll_export(self, job: ExportJob) -> PollResult:
        return self.api.job_status(job)
