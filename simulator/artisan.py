"""Artisan's API, as shared/api-docs/artisan-rest-api.md and artisan-ruby-gem.md say.

Auth: ``Authorization: Token token="<secret>"`` and ``public-api-key: <public>``. Apps
(``GET /public/api/apps``, the gem's list_apps), segments per app, profiles by ids
(``source=custom`` for Shared User IDs), profile and segment exports that create jobs,
jobs in both documented shapes: ``GET /public/api/jobs`` answers the REST doc's wrapped
shape, ``/public/api/jobs/status/{status}`` the gem's flat one, and ``GET
/public/api/jobs/{id}`` alternates between the two. Statuses come in mixed case. A
finished job's ``result_url`` is a presigned URL on the simulator's S3-like storage (another
origin: ``simulator.storage``) of a JSON file (profiles, most segments) or a CSV (every third
segment), gzip-compressed when configured. The docs say only that it "points to the location
from which to download the results of the job" (artisan-rest-api.md:151); our choice: object
storage, as vendors' export files usually are, so no Artisan key is needed or accepted there.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import typing as t
from dataclasses import dataclass

from simulator import data
from simulator.server import Request, Response, VendorApp, error, json_response

JOB_BASE_TIME = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc)
STATUS_WORDS = {"QUEUED": "queued", "RUNNING": "Running", "COMPLETED": "completed"}


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
        self.jobs: list[dict[str, t.Any]] = [
            self._historical_job(i) for i in range(config.historical_jobs)
        ]
        self.exports: dict[str, dict[str, t.Any]] = {}  # job id -> what it exports, polls
        self.triggers: dict[str, int] = {}  # "app/segment" or "app/profiles" -> count
        self.route("GET", "/public/api/apps", self.list_apps)
        self.route("GET", "/public/api/apps/(?P<app>[^/]+)/segments/?", self.list_segments)
        self.route(
            "POST",
            "/public/api/apps/(?P<app>[^/]+)/segments/(?P<segment>[^/]+)",
            self.export_segment,
        )
        self.route("POST", "/public/api/apps/(?P<app>[^/]+)/users/export", self.export_profiles)
        self.route("GET", "/public/api/apps/(?P<app>[^/]+)/users", self.profiles_by_ids)
        self.route("GET", "/public/api/jobs", self.list_jobs)
        self.route("GET", "/public/api/jobs/status/(?P<status>[^/]+)", self.jobs_by_status)
        self.route("GET", "/public/api/jobs/(?P<job>[^/]+)", self.get_job)

    # -- data ----------------------------------------------------------------------------------

    def _historical_job(self, index: int) -> dict[str, t.Any]:
        created = JOB_BASE_TIME + dt.timedelta(days=index * 3)
        status = ("COMPLETED", "QUEUED", "FAILED", "RUNNING")[index % 4]
        return {
            "_id": data.stable_uuid(self.seed, "artisan-job", index)[:24],
            "created_at": iso(created),
            "description": "",
            "end": None,
            "identifier": "sgmt-export",
            "organization_id": self.org,
            "result_url": None,
            "start": iso(created - dt.timedelta(minutes=5)),
            "status": STATUS_WORDS.get(status, status),
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
        return json_response({"apps": self.apps})

    def list_segments(self, request: Request) -> Response:
        assert request.match is not None
        segments = self.segments.get(request.match["app"])
        return error(404, "unknown app") if segments is None else json_response(segments)

    def profiles_by_ids(self, request: Request) -> Response:
        assert request.match is not None
        app_id = request.match["app"]
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        source = "custom" if request.arg("source") == "custom" else "artisan"
        return json_response(
            {"success": True, "response": [self.profile(app_id, i, source) for i in ids]}
        )

    # -- exports and jobs ------------------------------------------------------------------------

    def _new_job(self, key: str, what: dict[str, t.Any]) -> dict[str, t.Any]:
        with self.lock:
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
                "status": "queued",
                "type": what["type"],
                "updated_at": iso(now),
            }
            self.jobs.append(job)
            self.exports[job_id] = {**what, "polls": 0}
        return job

    def export_segment(self, request: Request) -> Response:
        assert request.match is not None
        app_id, segment_id = request.match["app"], request.match["segment"]
        if segment_id not in [s["id"] for s in self.segments.get(app_id, [])]:
            return error(404, "unknown segment")
        what = {
            "app": app_id,
            "segment": segment_id,
            "type": "Segments Export",
            "identifier": "sgmt-export",
            "description": f"segment {segment_id}",
        }
        job = self._new_job(f"{app_id}/{segment_id}", what)
        return json_response({"job_id": job["_id"], "status": "QUEUED"})

    def export_profiles(self, request: Request) -> Response:
        assert request.match is not None
        app_id = request.match["app"]
        if app_id not in self.segments:
            return error(404, "unknown app")
        what = {
            "app": app_id,
            "segment": None,
            "type": "Profiles Export",
            "identifier": "profile-export",
            "description": "profiles",
        }
        job = self._new_job(f"{app_id}/profiles", what)
        return json_response({"jobs": {"_id": job["_id"], "status": "queued"}})  # the wrapped shape

    def advance(self, job: dict[str, t.Any], request: Request) -> None:
        export = self.exports.get(job["_id"])
        if export is None or job["status"].upper() in ("COMPLETED", "COMPLETE", "FAILED"):
            return
        export["polls"] += 1
        now = iso(dt.datetime.now(dt.timezone.utc))
        job["updated_at"] = now
        if export["polls"] < self.config.polls_to_complete:
            job["status"] = "running"
            return
        segment = export["segment"]
        failed = (
            segment is not None
            and [s["id"] for s in self.segments[export["app"]]].index(segment)
            in self.config.fail_segments
        )
        job["status"] = "FAILED" if failed else ("COMPLETE" if export["polls"] % 2 else "completed")
        job["end"] = now
        if not failed:
            self.store_result(job["_id"], export)

    def store_result(self, job_id: str, export: dict[str, t.Any]) -> None:
        """Put the job's result file in storage; ``result_url`` presigns it when read."""
        segment = export["segment"]
        ext = "csv" if segment is not None and self.is_csv(export["app"], segment) else "json"
        name = f"{job_id}.{ext}" + (".gz" if self.config.gzip else "")
        if segment is None:
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

        self.storage.put(
            self.config.bucket,
            f"jobs/{name}",
            chunks,
            vendor=self.name,
            fault_path=f"/files/{name}",
        )
        export["object"] = f"jobs/{name}"

    def shown(self, job: dict[str, t.Any]) -> dict[str, t.Any]:
        """A job as the API shows it: ``result_url`` a fresh presigned URL once there is one."""
        shown = dict(job)
        key = self.exports.get(job["_id"], {}).get("object")
        if key is not None:
            shown["result_url"] = self.storage.presign(
                self.config.bucket, key, expires=self.config.url_expires_seconds
            )
        return shown

    def get_job(self, request: Request) -> Response:
        assert request.match is not None
        job = next((j for j in self.jobs if j["_id"] == request.match["job"]), None)
        if job is None:
            return error(404, "unknown job")
        with self.lock:
            self.advance(job, request)
            flat = self.exports.get(job["_id"], {}).get("polls", 0) % 2 == 0
        # The gem doc answers a flat object, the REST doc's style wraps it: alternate.
        return json_response(self.shown(job) if flat else {"jobs": self.shown(job)})

    def list_jobs(self, request: Request) -> Response:
        return json_response({"jobs": [{"jobs": self.shown(job)} for job in self.jobs]})

    def jobs_by_status(self, request: Request) -> Response:
        assert request.match is not None
        wanted = request.match["status"].upper()
        wanted = {"COMPLETE": "COMPLETED"}.get(wanted, wanted)
        flat = [
            {"id": j["_id"], **{k: v for k, v in self.shown(j).items() if k != "_id"}}
            for j in self.jobs
        ]
        return json_response(
            {
                "jobs": [
                    j
                    for j in flat
                    if {"COMPLETE": "COMPLETED"}.get(j["status"].upper(), j["status"].upper())
                    == wanted
                ]
            }
        )

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
