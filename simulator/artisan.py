"""Artisan's API, as shared/api-docs/artisan-rest-api.md ("REST") and artisan-ruby-gem.md
("gem") say, with every variant the two docs show behind a switch of ``ArtisanConfig``.

Auth (REST:48-49): ``Authorization: Token token="<secret>"`` and ``public-api-key:
<public>``. Apps (the gem's list_apps; the REST doc gives it no path: ``GET
/public/api/apps`` is our choice), segments per app, profiles by ids (``source=custom`` for
Shared User IDs) or one by one, profile and segment exports that create jobs, and the jobs
in the docs' shapes: the REST doc's wrapped ``{"jobs":[{"jobs":{...}}]}`` with ``_id``, the
gem's flat ``{"jobs":[{"id",...}]}`` without ``updated_at`` nor ``result_url``, and the
gem's single flat job with ``_id``. Status words in every documented spelling.

A finished job's ``result_url`` is a presigned URL on the simulator's S3-like storage
(another origin: ``simulator.storage``) of a JSON file (profiles, most segments) or a CSV
(every third segment), gzip-compressed when configured. The docs say only that it "points
to the location from which to download the results of the job" (REST:151); our choice:
object storage, as vendors' export files usually are, so no Artisan key is needed there.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import typing as t
from dataclasses import dataclass

from simulator import data
from simulator.server import Request, Response, VendorApp, error, json_response

# our choice: fixed dates, so a start_date in the tests' past always includes them


def job_base_time() -> dt.datetime:
    """Two days before midnight (UTC) of today: the historical jobs ran since then.

    our choice: relative to the day the simulator runs, so that a start_date a few days back
    keeps them on any date; the same all day, so two simulators of one seed agree.
    """
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=2)


STATES = ("QUEUED", "RUNNING", "COMPLETED", "FAILED")
#: How each doc spells the four states.
STATUS_WORDS = {
    # REST:147 "job status (queued, running, completed, or failed)"
    "rest": {
        "QUEUED": "queued",
        "RUNNING": "running",
        "COMPLETED": "completed",
        "FAILED": "failed",
    },
    # REST:207 "Valid statuses are `QUEUED`, `RUNNING`, `COMPLETED`, and `FAILED`."
    "rest_upper": {s: s for s in STATES},
    # gem:202 "Valid statuses are `QUEUED`, `RUNNING`, `COMPLETE`, and `FAILED`."
    "gem": {"QUEUED": "QUEUED", "RUNNING": "RUNNING", "COMPLETED": "COMPLETE", "FAILED": "FAILED"},
}
#: REST:159-170, the sample of GET /public/api/jobs (each wrapped in {"jobs": ...}).
REST_JOB_FIELDS = (
    "_id",
    "created_at",
    "description",
    "end",
    "identifier",
    "organization_id",
    "result_url",
    "start",
    "status",
    "type",
    "updated_at",
)
#: gem:217-223, list_jobs("COMPLETE"): flat items, no updated_at, no result_url.
GEM_LIST_FIELDS = ("id", "type", "created_at", "start", "end", "status")
#: gem:263-273, get_job: a flat object with ``_id``; no result_url is shown (see ``shown``).
GEM_JOB_FIELDS = tuple(f for f in REST_JOB_FIELDS if f != "result_url")


@dataclass
class ArtisanConfig:
    apps: int = 2
    segments_per_app: int = 3
    members_per_segment: int = 20
    profiles_per_app: int = 15
    historical_jobs: int = 6
    polls_to_complete: int = 3
    gzip: bool = False
    fail_segments: tuple[int, ...] = ()
    public_key: str = "sim-artisan-public"
    secret_key: str = "sim-artisan-secret-key"
    bucket: str = "artisan-exports"  # our choice
    url_expires_seconds: int = 3600  # our choice
    #: Status words: "rest", "rest_upper", "gem" (see STATUS_WORDS), or "mixed" (our choice:
    #: each job in one of the three spellings, so one account shows them all).
    status_words: str = "mixed"
    #: GET /public/api/jobs: "rest" (REST:156, wrapped, ``_id``) or "gem" (gem:214, flat).
    jobs_shape: str = "rest"
    #: GET /public/api/jobs/status/{status}: "gem" (gem:209-242, list_jobs("COMPLETE") is this
    #: call) or "rest". REST:207 says only "List details for all jobs that have the status".
    status_jobs_shape: str = "gem"
    #: GET /public/api/jobs/{id}: "rest" (REST:197 "See the previous section": our reading,
    #: the wrapped object), "gem" (gem:262, a flat object) or "alternate" (our choice: the
    #: two, turn about, on successive polls of a job).
    job_shape: str = "alternate"
    #: None: each shape's own id field (``_id`` except the gem's list, ``id``); "_id" or
    #: "id": that name in every shape.
    id_field: str | None = None
    #: Polls a finished job still answers ``result_url: null`` for. REST:166-168, the sample
    #: job has "result_url":null with "status":"completed".
    url_lag_polls: int = 0
    #: Profiles by ids: "gem" wraps them (gem:100-102, {"success": true, "response": ...},
    #: shown for get_profile) or "bare" (our choice; the REST doc shows no profile body).
    profiles_shape: str = "gem"
    #: The apps list has no HTTP path in the docs (only the gem's list_apps, gem:46): False
    #: answers it 404, so only configured app ids work.
    apps_endpoint: bool = True


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ArtisanApp(VendorApp):
    prefix = "artisan"
    name = "artisan"

    def __init__(self, seed: int, config: ArtisanConfig) -> None:
        super().__init__()
        self.seed = seed
        self.config = config
        self.lock = threading.Lock()
        self.org = data.stable_uuid(seed, "artisan-org")[:24]
        self.apps = [
            {"id": data.stable_uuid(seed, "artisan-app", i)[:24], "name": f"Demo App {i + 1}"}
            for i in range(config.apps)
        ]
        self.segments = {
            app["id"]: [
                {
                    "id": data.stable_uuid(seed, "artisan-seg", app["id"], j)[:24],
                    "name": f"Segment {j}",
                }
                for j in range(config.segments_per_app)
            ]
            for app in self.apps
        }
        #: Jobs with their state in ``status`` (one of STATES); ``shown`` spells it.
        self.jobs: list[dict[str, t.Any]] = [
            self._historical_job(i) for i in range(config.historical_jobs)
        ]
        self.exports: dict[str, dict[str, t.Any]] = {}  # job id -> what it exports, polls
        self.triggers: dict[str, int] = {}  # "app/segment" or "app/profiles" -> count
        self.callback_urls: list[str] = []  # REST:74 "callbackUrl" received (never called)
        self.route("GET", "/public/api/apps", self.list_apps)
        self.route("GET", "/public/api/apps/(?P<app>[^/]+)/segments/?", self.list_segments)
        self.route(
            "POST",
            "/public/api/apps/(?P<app>[^/]+)/segments/(?P<segment>[^/]+)",
            self.export_segment,
        )
        self.route("POST", "/public/api/apps/(?P<app>[^/]+)/users/export", self.export_profiles)
        self.route("GET", "/public/api/apps/(?P<app>[^/]+)/users", self.profiles_by_ids)
        self.route("GET", "/public/api/apps/(?P<app>[^/]+)/users/(?P<user>[^/]+)", self.one_profile)
        self.route("GET", "/public/api/jobs", self.list_jobs)
        self.route("GET", "/public/api/jobs/status/(?P<status>[^/]+)", self.jobs_by_status)
        self.route("GET", "/public/api/jobs/(?P<job>[^/]+)", self.get_job)

    # -- data ----------------------------------------------------------------------------------

    def _historical_job(self, index: int) -> dict[str, t.Any]:
        created = job_base_time() + dt.timedelta(hours=index * 3)
        return {
            "_id": data.stable_uuid(self.seed, "artisan-job", index)[:24],
            "created_at": iso(created),
            "description": "",
            "end": None,
            "identifier": "sgmt-export",
            "organization_id": self.org,
            "result_url": None,
            "start": iso(created - dt.timedelta(minutes=5)),
            "status": ("COMPLETED", "QUEUED", "FAILED", "RUNNING")[index % 4],
            "type": "Segments Export",
            "updated_at": iso(created + dt.timedelta(hours=1)),
        }

    def profile(self, app_id: str, identifier: str, source: str = "artisan") -> dict[str, t.Any]:
        r = data.rng(self.seed, "artisan-profile", app_id, identifier)
        return {
            "identifier": identifier,
            "identifierSource": source,
            "href": f"/public/api/apps/{app_id}/users/{identifier}?source={source}",
            "attributes": {
                "osVersion": f"{r.randint(7, 17)}.{r.randint(0, 4)}",
                "geo-countryCode": data.COUNTRIES[r.randrange(len(data.COUNTRIES))],
                "userSessionCount": str(r.randint(1, 90)),
                "pushEnabled": "YES" if r.random() < 0.5 else "NO",
                "sharedUserId": data.stable_uuid(self.seed, "suid", app_id, identifier),
            },
        }

    def export_profiles_of(self, app_id: str) -> list[dict[str, t.Any]]:
        ids = [
            data.stable_uuid(self.seed, "artisan-device", app_id, i)
            for i in range(self.config.profiles_per_app)
        ]
        return [self.profile(app_id, identifier) for identifier in ids]

    def segment_members(self, app_id: str, segment_id: str) -> list[dict[str, t.Any]]:
        rows = []
        for i in range(self.config.members_per_segment):
            row = data.member_row(self.seed, f"{app_id}/{segment_id}", i)
            rows.append(
                {
                    "artisanId": row["userId"],
                    "email": row["email"],
                    "country": row["country"],
                    "note": row["note"],
                }
            )
        return rows

    def is_csv(self, app_id: str, segment_id: str) -> bool:
        return [s["id"] for s in self.segments[app_id]].index(segment_id) % 3 == 2

    # -- auth, apps, segments, profiles --------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        token = request.headers.get("Authorization") == f'Token token="{self.config.secret_key}"'
        return token and request.headers.get("public-api-key") == self.config.public_key

    def list_apps(self, request: Request) -> Response:
        if not self.config.apps_endpoint:
            return error(404, "no route for GET /public/api/apps")
        return json_response({"apps": self.apps})  # gem:61-72

    def list_segments(self, request: Request) -> Response:
        # REST:66 "List all segments by segment ID and name." our choice: a bare list of
        # {"id", "name"} (the body is not shown).
        assert request.match is not None
        segments = self.segments.get(request.match["app"])
        return error(404, "unknown app") if segments is None else json_response(segments)

    def profiles_by_ids(self, request: Request) -> Response:
        # REST:94-98 "ids": "id_1,id_2"; REST:112-116 with "source": "custom"
        assert request.match is not None
        app_id = request.match["app"]
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        source = "custom" if request.arg("source") == "custom" else "artisan"
        return self.profiles_answer([self.profile(app_id, i, source) for i in ids])

    def one_profile(self, request: Request) -> Response:
        # REST:88 GET /public/api/apps/{app_id}/users/{user_id} (REST:106 "source": "custom")
        assert request.match is not None
        if request.match["app"] not in self.segments:
            return error(404, "unknown app")
        source = "custom" if request.arg("source") == "custom" else "artisan"
        return self.profiles_answer(
            self.profile(request.match["app"], request.match["user"], source)
        )

    def profiles_answer(self, profiles: t.Any) -> Response:
        if self.config.profiles_shape == "bare":
            return json_response(profiles)
        return json_response({"success": True, "response": profiles})  # gem:100-102

    # -- exports and jobs ------------------------------------------------------------------------

    def _new_job(self, key: str, what: dict[str, t.Any], request: Request) -> dict[str, t.Any]:
        callback = request.arg("callbackUrl")
        try:
            body = request.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("callbackUrl"):
            callback = str(body["callbackUrl"])
        with self.lock:
            if callback:
                self.callback_urls.append(str(callback))
            self.triggers[key] = self.triggers.get(key, 0) + 1
            job_id = data.stable_uuid(self.seed, "artisan-export", key, self.triggers[key])[:24]
            now = dt.datetime.now(dt.timezone.utc)
            job = {
                "_id": job_id,
                "created_at": iso(now),
                "description": what["description"],
                "end": None,
                "identifier": what["identifier"],
                "organization_id": self.org,
                "result_url": None,
                "start": iso(now),
                "status": "QUEUED",
                "type": what["type"],
                "updated_at": iso(now),
            }
            self.jobs.append(job)
            self.exports[job_id] = {**what, "polls": 0, "url_polls": 0}
        return job

    def export_segment(self, request: Request) -> Response:
        assert request.match is not None
        app_id, segment_id = request.match["app"], request.match["segment"]
        if segment_id not in [s["id"] for s in self.segments.get(app_id, [])]:
            return error(404, "unknown segment")
        what = {
            "app": app_id,
            "segment": segment_id,
            "type": "Segments Export",  # gem:219
            "identifier": "sgmt-export",  # gem:268
            "description": f"segment {segment_id}",
        }
        job = self._new_job(f"{app_id}/{segment_id}", what, request)
        # our choice: the docs show no answer to an export request (gem:153 "a JSON object
        # ... that contains the job ID"); this one names it job_id, the profile export below
        # answers the wrapped job shape.
        return json_response({"job_id": job["_id"], "status": "QUEUED"})

    def export_profiles(self, request: Request) -> Response:
        assert request.match is not None
        app_id = request.match["app"]
        if app_id not in self.segments:
            return error(404, "unknown app")
        # gem:142-145 artisan_ids or shared_user_ids ("either ... but not both"); without
        # either, our choice: every profile of the app (REST:124 shows only callbackUrl).
        body = request.json() if request.body.strip().startswith(b"{") else {}
        ids, source = body.get("artisan_ids"), "artisan"
        if body.get("shared_user_ids"):
            if ids:
                return error(400, "pass either artisan_ids or shared_user_ids, not both")
            ids, source = body["shared_user_ids"], "custom"
        what = {
            "app": app_id,
            "segment": None,
            "type": "Profiles Export",
            "identifier": "profile-export",
            "description": "profiles",
            "ids": [str(i) for i in ids] if ids else None,
            "source": source,
        }
        job = self._new_job(f"{app_id}/profiles", what, request)
        return json_response({"jobs": {"_id": job["_id"], "status": "queued"}})  # the wrapped shape

    def advance(self, job: dict[str, t.Any]) -> None:
        export = self.exports.get(job["_id"])
        if export is None:
            return
        if job["status"] in ("COMPLETED", "FAILED"):
            export["url_polls"] += 1
            return
        export["polls"] += 1
        now = iso(dt.datetime.now(dt.timezone.utc))
        job["updated_at"] = now
        if export["polls"] < self.config.polls_to_complete:
            job["status"] = "RUNNING"
            return
        segment = export["segment"]
        failed = (
            segment is not None
            and [s["id"] for s in self.segments[export["app"]]].index(segment)
            in self.config.fail_segments
        )
        job["status"] = "FAILED" if failed else "COMPLETED"
        job["end"] = now
        if not failed:
            self.store_result(job["_id"], export)

    def store_result(self, job_id: str, export: dict[str, t.Any]) -> None:
        """Put the job's result file in storage; ``result_url`` presigns it when read."""
        segment = export["segment"]
        ext = "csv" if segment is not None and self.is_csv(export["app"], segment) else "json"
        name = f"{job_id}.{ext}" + (".gz" if self.config.gzip else "")
        if segment is None and export.get("ids"):
            items = [self.profile(export["app"], i, export["source"]) for i in export["ids"]]
        elif segment is None:
            items = self.export_profiles_of(export["app"])
        else:
            items = self.segment_members(export["app"], segment)
        gz = self.config.gzip

        def chunks() -> t.Iterable[bytes]:
            if ext == "csv":
                columns = list(items[0]) if items else ["artisanId"]
                plain: t.Iterable[bytes] = data.csv_chunks(columns, items)
            else:
                plain = [json.dumps(items).encode()]
            return data.gzip_chunks(plain) if gz else plain

        key = f"jobs/{name}"
        self.storage.put(
            self.config.bucket, key, chunks, vendor=self.name, fault_path=f"/files/{name}"
        )
        export["object"] = key

    def word(self, job: dict[str, t.Any]) -> str:
        """The job's state in the configured spelling."""
        style = self.config.status_words
        if style == "mixed":
            style = ("rest", "gem", "rest_upper")[self.jobs.index(job) % 3]
        return STATUS_WORDS[style][job["status"]]

    def shown(self, job: dict[str, t.Any], fields: t.Sequence[str]) -> dict[str, t.Any]:
        """A job as the API shows it, with ``fields`` (in that order, ``_id``/``id`` per
        ``id_field``): the status spelled, ``result_url`` a fresh presigned URL once the file
        is there and the configured lag has passed."""
        export = self.exports.get(job["_id"], {})
        values = {**job, "id": job["_id"], "status": self.word(job)}
        key = export.get("object")
        if key is not None and export.get("url_polls", 0) >= self.config.url_lag_polls:
            values["result_url"] = self.storage.presign(
                self.config.bucket, key, expires=self.config.url_expires_seconds
            )
        shown = {}
        for name in fields:
            if name in ("_id", "id"):
                name = self.config.id_field or name
            shown[name] = values[name]
        return shown

    def render(self, job: dict[str, t.Any], shape: str, *, item: bool) -> dict[str, t.Any]:
        """One job in ``shape``: "rest" wraps it, "gem" is flat (as a list ``item``: the gem
        list's fields; alone: the gem get_job's fields, plus result_url: our choice, since
        gem:286 download_job needs it and the gem shows no other way to the file)."""
        if shape == "rest":
            return {"jobs": self.shown(job, REST_JOB_FIELDS)}
        if item:
            return self.shown(job, GEM_LIST_FIELDS)
        return self.shown(job, (*GEM_JOB_FIELDS, "result_url"))

    def get_job(self, request: Request) -> Response:
        assert request.match is not None
        job = next((j for j in self.jobs if j["_id"] == request.match["job"]), None)
        if job is None:
            return error(404, "unknown job")
        with self.lock:
            self.advance(job)
            export = self.exports.get(job["_id"], {})
            polls = export.get("polls", 0) + export.get("url_polls", 0)
        shape = self.config.job_shape
        if shape == "alternate":
            shape = "gem" if polls % 2 == 0 else "rest"
        return json_response(self.render(job, shape, item=False))

    def list_jobs(self, request: Request) -> Response:
        shape = self.config.jobs_shape
        return json_response({"jobs": [self.render(job, shape, item=True) for job in self.jobs]})

    def jobs_by_status(self, request: Request) -> Response:
        # our choice: any documented spelling, any case, is understood; others list nothing.
        assert request.match is not None
        wanted = request.match["status"].upper()
        wanted = {"COMPLETE": "COMPLETED"}.get(wanted, wanted)
        shape = self.config.status_jobs_shape
        jobs = [job for job in self.jobs if job["status"] == wanted]
        return json_response({"jobs": [self.render(job, shape, item=True) for job in jobs]})

    # -- simulator plumbing ------------------------------------------------------------------------

    def tap_config(self, base_url: str) -> dict[str, t.Any]:
        return {
            "artisan_base_url": base_url,
            "artisan_public_api_key": self.config.public_key,
            "artisan_secret_api_key": self.config.secret_key,
        }

    def truth(self, *, rerun: bool = False) -> dict[str, int]:
        segments = sum(len(s) for s in self.segments.values())
        exports_per_run = segments + len(self.apps)  # one per segment, one profile export per app
        members = segments * self.config.members_per_segment
        return {
            "artisan_apps": len(self.apps),
            "artisan_segments": segments,
            # The jobs stream is read before the exports run: a first run sees the historical
            # jobs, an incremental rerun also the export jobs the first run created.
            "artisan_jobs": self.config.historical_jobs + (exports_per_run if rerun else 0),
            "artisan_profiles": len(self.apps) * self.config.profiles_per_app,
            # Artisan segments carry no change marker: each run exports a fresh snapshot,
            # keyed by its own job_id, so a warehouse keeps one snapshot per run.
            "artisan_segment_members": members * (2 if rerun else 1),
        }

    def trigger_counts(self) -> dict[str, int]:
        return dict(self.triggers)
