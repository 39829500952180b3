"""Indicative's User Segments Export API, as shared/api-docs/indicative-segments-export.md says.

Basic auth (API key : access token). ``GET /service/v1/segments/list``; ``POST
/service/v1/segments/export/`` answers a PENDING export; ``GET
/service/v1/segments/export/{exportId}`` stays PENDING until the export is done (after
``polls_to_complete`` status reads, or ``export_seconds`` of wall time), then answers
COMPLETE with ``filename``. The doc: the job "upload[s] the final result to Amazon S3"
(indicative-segments-export.md:5) and its example filename is
``s3://upload-bucket/path/to/<exportId>.csv`` (indicative-segments-export.md:101). So at
completion the CSV (or gzip) file is put in the simulator's S3-like storage
(``simulator.storage``, another origin) and ``filename`` is a presigned URL of it; with
``filename_style = "s3"`` it is uploaded to a real S3 API (moto, ``simulator.s3``) and
``filename`` is the ``s3://`` URI. Exports older than the 48-hour retention answer 404 and
their file is deleted (its URL then answers 403, as S3 does for a missing key).
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
import typing as t
from dataclasses import dataclass, field

from simulator import data, s3
from simulator.server import Request, Response, VendorApp, error, http_date, json_response

# indicative-segments-export.md:82 "the file will remain in Amazon for no more than 48 hours"
RETENTION = dt.timedelta(hours=48)
BASE_TIME = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)


@dataclass
class Export:
    export_id: str
    segment_id: str
    started: dt.datetime
    started_monotonic: float
    polls: int = 0
    age_offset: dt.timedelta = dt.timedelta(0)
    status: str = "PENDING"
    ended: dt.datetime | None = None
    throttled: int = 0  # status reads answered 429
    bucket: str = ""
    file_key: str | None = None  # where the file was put at completion
    file_uri: str = ""  # s3://bucket/key when uploaded to a real S3 API


@dataclass
class IndicativeConfig:
    segments: int = 5
    rows_per_segment: int | dict[int, int] = 50
    polls_to_complete: int = 3
    export_seconds: float | None = None
    gzip: bool = False
    fail_segments: set[int] = field(default_factory=set)
    retry_after: str | None = None
    api_key: str = "sim-indicative-key"
    access_token: str = "sim-indicative-token-secret"
    # indicative-segments-export.md:101 "filename": "s3://upload-bucket/path/to/<id>.csv"
    bucket: str = "upload-bucket"
    key_prefix: str = "path/to/"
    #: "presigned" (an https-style presigned URL on the simulator's storage) or "s3" (the
    #: ``s3://bucket/key`` URI of the doc's example, uploaded to ``s3_endpoint_url``).
    filename_style: str = "presigned"
    s3_endpoint_url: str | None = None
    #: our choice: how long a presigned ``filename`` is valid (the file itself lives 48 h).
    url_expires_seconds: int = 3600
    # indicative-segments-export.md:21 "429 | Too Many Requests: Too many requests have been
    # attempted in a given amount of time." The doc names no Retry-After; our choice: one is sent,
    # as seconds or, as HTTP allows, as an HTTP date (read against the answer's own Date).
    #: The first N status reads of each export answer 429 (then it goes on as usual).
    throttle_polls: int = 0
    retry_after_seconds: float = 1.0
    retry_after_form: str = "seconds"  # or "date"
    #: Seconds Indicative's clock is ahead of ours (negative: behind): its ``Date`` header and
    #: any Retry-After date are on its clock. our choice: servers' clocks drift.
    date_skew_seconds: float = 0.0
    # indicative-segments-export.md:20 "403 | Forbidden: ... the specified project does not have
    # access to the Export API." False: the export endpoints answer that 403 (the list still works).
    export_api_access: bool = True
    #: The export object's fields: "table" (indicative-segments-export.md:53-59, with a
    #: top-level projectId) or "example" (the examples, lines 65-80 and 87-102, have no
    #: top-level projectId; it is only inside ``segment``).
    export_fields: str = "table"


class IndicativeApp(VendorApp):
    prefix = "indicative"
    name = "indicative"

    def __init__(self, seed: int, config: IndicativeConfig) -> None:
        super().__init__()
        self.seed = seed
        self.config = config
        self.polls_to_complete = config.polls_to_complete
        self.exports: dict[str, Export] = {}
        self.triggers: dict[str, int] = {}
        self.lock = threading.Lock()
        self.segments = [self._segment(i) for i in range(config.segments)]
        self.route("GET", "/service/v1/segments/list", self.list_segments)
        self.route("POST", "/service/v1/segments/export/?", self.trigger)
        self.route("GET", "/service/v1/segments/export/(?P<export_id>[^/]+)", self.status)

    # -- data ----------------------------------------------------------------------------

    def _segment(self, index: int) -> dict[str, t.Any]:
        r = data.rng(self.seed, "indicative-segment", index)
        never_run = index % 4 == 3
        last_run = BASE_TIME - dt.timedelta(hours=r.randint(1, 72), milliseconds=r.randint(0, 999))
        return {
            "segmentId": data.stable_uuid(self.seed, "indicative-segment", index),
            "name": f"Segment {index}",
            "description": None if index % 2 else f"Users of segment {index}",
            "category": None if index % 3 else "Lifecycle",
            "projectId": data.stable_uuid(self.seed, "indicative-project"),
            "type": "Static" if never_run else "Dynamic",
            "lastRun": None if never_run else data.iso_millis(last_run),
        }

    def segment_index(self, segment_id: str) -> int | None:
        for index, segment in enumerate(self.segments):
            if segment["segmentId"] == segment_id:
                return index
        return None

    def rows_of(self, index: int) -> int:
        rows = self.config.rows_per_segment
        return rows.get(index, 0) if isinstance(rows, dict) else rows

    def member_rows(self, segment_id: str) -> list[dict[str, str]]:
        """The rows an export of this segment holds (for exact comparisons in small tests)."""
        index = self.segment_index(segment_id)
        assert index is not None
        return [data.member_row(self.seed, segment_id, i) for i in range(self.rows_of(index))]

    def touch(self, segment_id: str) -> None:
        """Refresh a segment: its lastRun becomes now."""
        index = self.segment_index(segment_id)
        assert index is not None
        self.segments[index]["lastRun"] = data.iso_millis(dt.datetime.now(dt.timezone.utc))

    def age_export(self, export_id: str, hours: float) -> None:
        """Make an export ``hours`` older; past the retention its file is deleted."""
        export = self.exports[export_id]
        export.age_offset += dt.timedelta(hours=hours)
        if self.expired(export) and export.file_key is not None:
            if export.file_uri.startswith("s3://"):
                s3.delete(t.cast(str, self.config.s3_endpoint_url), export.bucket, export.file_key)
            elif self.storage is not None:
                self.storage.delete(export.bucket, export.file_key)

    def trigger_count(self) -> int:
        return sum(self.triggers.values())

    def trigger_counts(self) -> dict[str, int]:
        return {s["segmentId"]: self.triggers.get(s["segmentId"], 0) for s in self.segments}

    # -- API -----------------------------------------------------------------------------

    @property
    def clock_skew_seconds(self) -> float:  # type: ignore[override]
        return self.config.date_skew_seconds

    def authorized(self, request: Request) -> bool:
        expected = f"{self.config.api_key}:{self.config.access_token}".encode()
        return (
            request.headers.get("Authorization") == "Basic " + base64.b64encode(expected).decode()
        )

    def list_segments(self, request: Request) -> Response:
        return json_response(self.segments)

    def no_export_access(self) -> Response:
        message = (
            "Forbidden: Your request was rejected because the specified project does not have "
            "access to the Export API."
        )
        return error(403, message)

    def trigger(self, request: Request) -> Response:
        if not self.config.export_api_access:
            return self.no_export_access()
        body = request.json() or {}
        segment_id = str(body.get("segmentId", ""))
        index = self.segment_index(segment_id)
        if index is None:
            return error(404, f"unknown segment {segment_id!r}")
        # indicative-segments-export.md:63 "outputFormat": "csv" is the only format the doc shows;
        # our choice: it may be left out, any other is refused.
        if body.get("outputFormat", "csv") != "csv":
            return error(400, f"unsupported outputFormat {body.get('outputFormat')!r}")
        with self.lock:
            self.triggers[segment_id] = self.triggers.get(segment_id, 0) + 1
            count = sum(self.triggers.values())
            export_id = data.stable_uuid(self.seed, "indicative-export", segment_id, count)
            export = Export(
                export_id, segment_id, dt.datetime.now(dt.timezone.utc), time.monotonic()
            )
            self.exports[export_id] = export
        return json_response(self.export_object(export, request))

    def status(self, request: Request) -> Response:
        export = self.exports.get(request.match["export_id"]) if request.match else None
        if not self.config.export_api_access:
            return self.no_export_access()
        if export is None or self.expired(export):
            return error(404, "export not found")
        with self.lock:
            throttled = export.throttled < self.config.throttle_polls
            if throttled:
                export.throttled += 1
            else:
                export.polls += 1
                self.advance(export)
        if throttled:
            return self.too_many_requests()
        headers = {"Retry-After": self.config.retry_after} if self.config.retry_after else {}
        return json_response(self.export_object(export, request), **headers)

    def too_many_requests(self) -> Response:
        """429 with Retry-After in seconds, or as a date on Indicative's (skewed) clock."""
        wait = self.config.retry_after_seconds
        answer = error(429, "Too Many Requests")
        if self.config.retry_after_form == "date":
            server_now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
                seconds=self.config.date_skew_seconds
            )
            answer.headers["Date"] = http_date(server_now)
            answer.headers["Retry-After"] = http_date(server_now + dt.timedelta(seconds=wait))
        else:
            answer.headers["Retry-After"] = str(int(wait) if wait == int(wait) else wait)
        return answer

    # -- export lifecycle ---------------------------------------------------------------------

    def advance(self, export: Export) -> None:
        if export.status != "PENDING":
            return
        if self.config.export_seconds is not None:
            done = time.monotonic() - export.started_monotonic >= self.config.export_seconds
        else:
            done = export.polls >= self.polls_to_complete
        if done:
            index = self.segment_index(export.segment_id)
            export.status = "FAILED" if index in self.config.fail_segments else "COMPLETE"
            export.ended = dt.datetime.now(dt.timezone.utc)
            if export.status == "COMPLETE":
                self.store_file(export)

    def store_file(self, export: Export) -> None:
        """Upload the export's CSV (gzip when configured), as the doc says the job does."""
        rows = self.rows_of(t.cast(int, self.segment_index(export.segment_id)))
        seed, segment_id = self.seed, export.segment_id
        gz = self.config.gzip
        export.bucket = self.config.bucket
        name = f"{export.export_id}.csv" + (".gz" if gz else "")
        export.file_key = f"{self.config.key_prefix}{name}"

        def chunks() -> t.Iterable[bytes]:
            plain = data.member_csv_chunks(seed, segment_id, rows)
            return data.gzip_chunks(plain) if gz else plain

        if self.config.filename_style == "s3":
            endpoint = self.config.s3_endpoint_url
            if not endpoint:
                raise ValueError("IndicativeConfig.filename_style 's3' needs s3_endpoint_url")
            export.file_uri = s3.upload(endpoint, export.bucket, export.file_key, chunks())
            return
        self.storage.put(
            export.bucket,
            export.file_key,
            chunks,
            vendor=self.name,
            fault_path=f"/files/{name}",
            content_type="application/gzip" if gz else "text/csv",
            size=None if gz else data.member_csv_size(seed, segment_id, rows),
        )

    def filename(self, export: Export) -> str | None:
        """What ``filename`` says: null until COMPLETE (the doc's PENDING example,
        indicative-segments-export.md:79), then a fresh presigned URL of the file, or its
        ``s3://`` URI."""
        if export.status != "COMPLETE" or export.file_key is None:
            return None
        if export.file_uri:
            return export.file_uri
        return self.storage.presign(
            export.bucket, export.file_key, expires=self.config.url_expires_seconds
        )

    def expired(self, export: Export) -> bool:
        age = dt.datetime.now(dt.timezone.utc) - export.started + export.age_offset
        return age > RETENTION

    def export_object(self, export: Export, request: Request) -> dict[str, t.Any]:
        index = t.cast(int, self.segment_index(export.segment_id))
        shown = {
            "exportId": export.export_id,
            "segment": dict(self.segments[index]),
            "status": export.status,
            "projectId": self.segments[index]["projectId"],
            "startTime": data.iso_millis(export.started),
            "endTime": data.iso_millis(export.ended) if export.ended else None,
            "filename": self.filename(export),
        }
        if self.config.export_fields == "example":
            del shown["projectId"]
        return shown

    # -- simulator plumbing -------------------------------------------------------------------

    def tap_config(self, base_url: str) -> dict[str, t.Any]:
        return {
            "indicative_base_url": base_url,
            "indicative_api_key": self.config.api_key,
            "indicative_access_token": self.config.access_token,
        }

    def truth(self, *, rerun: bool = False) -> dict[str, int]:
        return {
            "indicative_segments": len(self.segments),
            "indicative_segment_exports": len(self.segments),
            "indicative_segment_members": sum(self.rows_of(i) for i in range(len(self.segments))),
        }

    def control(self, request: Request) -> Response | None:
        if request.path == "/touch" and request.method == "POST":
            self.touch(str(request.json()["segmentId"]))
            return json_response({"ok": True})
        if request.path == "/triggers":
            return json_response(self.trigger_counts())
        return None
