"""Indicative's User Segments Export API, as shared/api-docs/indicative-segments-export.md says.

Basic auth (API key : access token). ``GET /service/v1/segments/list``; ``POST
/service/v1/segments/export/`` answers a PENDING export; ``GET
/service/v1/segments/export/{exportId}`` stays PENDING until the export is done (after
``polls_to_complete`` status reads, or ``export_seconds`` of wall time), then answers
COMPLETE with ``filename``: the URL of a CSV (or gzip) file on this server. Exports older
than the 48-hour retention answer 404, and their files 403, like expired S3 objects; tests
age one export (``age_export``) or move the vendor's whole clock (``advance_clock``).

Control endpoints (under ``/_sim/indicative``): ``POST /touch`` {"segmentId"} refreshes a
segment's lastRun, ``POST /age`` {"exportId", "hours"}, ``POST /clock`` {"hours"},
``GET /triggers`` (exports triggered per segmentId), ``GET /stats`` (triggers, status polls).
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
import typing as t
from dataclasses import dataclass, field

from simulator import data
from simulator.server import BadRequest, Request, Response, VendorApp, error, json_response

RETENTION = dt.timedelta(hours=48)
BASE_TIME = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)

#: Members per segment: one count for all, a count per segment index (absent: 0), or a
#: function of the segment index.
RowsPerSegment = int | dict[int, int] | t.Callable[[int], int]


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


@dataclass
class IndicativeConfig:
    """Sizes and behaviour of the simulated Indicative project.

    An export is done after ``polls_to_complete`` status reads, or, when ``export_seconds``
    is set, after that much wall time since its trigger. Exports of ``fail_segments``
    (segment indexes or segmentIds) end FAILED. ``retry_after`` is sent on status answers.
    """

    segments: int = 5
    rows_per_segment: RowsPerSegment = 50
    polls_to_complete: int = 3
    export_seconds: float | None = None
    gzip: bool = False
    fail_segments: set[int | str] = field(default_factory=set)
    retry_after: str | None = None
    api_key: str = "sim-indicative-key"
    access_token: str = "sim-indicative-token-secret"


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
        self.clock_offset = dt.timedelta(0)
        self.lock = threading.Lock()
        self.segments = [self._segment(i) for i in range(config.segments)]
        self.route("GET", "/service/v1/segments/list", self.list_segments)
        self.route("POST", "/service/v1/segments/export/?", self.trigger)
        self.route("GET", "/service/v1/segments/export/(?P<export_id>[^/]+)", self.status)
        self.route("GET", r"/files/(?P<export_id>[^/.]+)\.csv(?P<gz>\.gz)?", self.file)

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
        if isinstance(rows, dict):
            return rows.get(index, 0)
        return rows(index) if callable(rows) else rows

    def member_rows(self, segment_id: str) -> list[dict[str, str]]:
        """The rows an export of this segment holds (for exact comparisons in small tests)."""
        index = self.segment_index(segment_id)
        assert index is not None
        return [data.member_row(self.seed, segment_id, i) for i in range(self.rows_of(index))]

    def now(self) -> dt.datetime:
        """The vendor's clock: wall time moved by ``advance_clock``."""
        return dt.datetime.now(dt.timezone.utc) + self.clock_offset

    def touch(self, segment_id: str) -> None:
        """Refresh a segment: its lastRun becomes now. KeyError for an unknown segment."""
        index = self.segment_index(segment_id)
        if index is None:
            raise KeyError(segment_id)
        with self.lock:
            self.segments[index]["lastRun"] = data.iso_millis(self.now())

    def age_export(self, export_id: str, hours: float) -> None:
        """Make one export look ``hours`` older (past 48 h: status 404, file 403)."""
        with self.lock:
            self.exports[export_id].age_offset += dt.timedelta(hours=hours)

    def advance_clock(self, hours: float) -> None:
        """Move the vendor's clock: every export so far gets ``hours`` older."""
        with self.lock:
            self.clock_offset += dt.timedelta(hours=hours)

    def trigger_count(self) -> int:
        return sum(self.triggers.values())

    def trigger_counts(self) -> dict[str, int]:
        return {s["segmentId"]: self.triggers.get(s["segmentId"], 0) for s in self.segments}

    def status_polls(self) -> dict[str, int]:
        """Status reads answered per exportId (404s of expired exports not counted)."""
        with self.lock:
            return {export_id: export.polls for export_id, export in self.exports.items()}

    def poll_count(self) -> int:
        return sum(self.status_polls().values())

    def stats(self) -> dict[str, t.Any]:
        return {
            "triggers": self.trigger_counts(),
            "status_polls": self.status_polls(),
            "trigger_count": self.trigger_count(),
            "poll_count": self.poll_count(),
        }

    # -- API -----------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        expected = f"{self.config.api_key}:{self.config.access_token}".encode()
        return request.headers.get("Authorization") == "Basic " + base64.b64encode(
            expected
        ).decode() or request.path.startswith("/files/")

    def list_segments(self, request: Request) -> Response:
        return json_response(self.segments)

    def trigger(self, request: Request) -> Response:
        segment_id = request.json_object().get("segmentId")
        if not isinstance(segment_id, str) or not segment_id:
            raise BadRequest("segmentId is required")
        if self.segment_index(segment_id) is None:
            return error(404, f"unknown segment {segment_id!r}")
        with self.lock:
            self.triggers[segment_id] = self.triggers.get(segment_id, 0) + 1
            count = sum(self.triggers.values())
            export_id = data.stable_uuid(self.seed, "indicative-export", segment_id, count)
            export = Export(export_id, segment_id, self.now(), time.monotonic())
            self.exports[export_id] = export
        return json_response(self.export_object(export, request))

    def status(self, request: Request) -> Response:
        export = self.exports.get(request.match["export_id"]) if request.match else None
        if export is None or self.expired(export):
            return error(404, "export not found")
        with self.lock:
            export.polls += 1
            self.advance(export)
        answer = json_response(self.export_object(export, request))
        if self.config.retry_after:
            answer.headers["Retry-After"] = self.config.retry_after
        return answer

    def file(self, request: Request) -> Response:
        assert request.match is not None
        export = self.exports.get(request.match["export_id"])
        if export is None or export.status != "COMPLETE" or self.expired(export):
            return Response(
                403, b"<Error><Code>AccessDenied</Code></Error>", content_type="application/xml"
            )
        rows = self.rows_of(t.cast(int, self.segment_index(export.segment_id)))
        chunks = data.member_csv_chunks(self.seed, export.segment_id, rows)
        if request.match["gz"]:
            return Response(200, data.gzip_chunks(chunks), content_type="application/gzip")
        return Response(200, chunks, content_type="text/csv")

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
            failing = self.config.fail_segments
            fails = index in failing or export.segment_id in failing
            export.status = "FAILED" if fails else "COMPLETE"
            export.ended = self.now()

    def expired(self, export: Export) -> bool:
        return self.now() - export.started + export.age_offset > RETENTION

    def export_object(self, export: Export, request: Request) -> dict[str, t.Any]:
        index = t.cast(int, self.segment_index(export.segment_id))
        suffix = ".csv.gz" if self.config.gzip else ".csv"
        complete = export.status == "COMPLETE"
        return {
            "exportId": export.export_id,
            "segment": dict(self.segments[index]),
            "status": export.status,
            "projectId": self.segments[index]["projectId"],
            "startTime": data.iso_millis(export.started),
            "endTime": data.iso_millis(export.ended) if export.ended else None,
            "filename": f"{request.base_url}/files/{export.export_id}{suffix}"
            if complete
            else None,
        }

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
        if request.method == "GET" and request.path == "/triggers":
            return json_response(self.trigger_counts())
        if request.method == "GET" and request.path == "/stats":
            return json_response(self.stats())
        if request.method != "POST":
            return None
        body = request.json_object()
        try:
            if request.path == "/touch":
                self.touch(str(body["segmentId"]))
            elif request.path == "/age":
                self.age_export(str(body["exportId"]), float(body["hours"]))
            elif request.path == "/clock":
                self.advance_clock(float(body["hours"]))
            else:
                return None
        except KeyError as exc:
            return error(404, f"unknown or missing {exc}")
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"bad {request.path} body: {exc}") from None
        return json_response({"ok": True})
