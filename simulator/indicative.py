"""Indicative's User Segments Export API, as shared/api-docs/indicative-segments-export.md says.

Basic auth (API key : access token). ``GET /service/v1/segments/list``; ``POST
/service/v1/segments/export/`` answers a PENDING export; ``GET
/service/v1/segments/export/{exportId}`` stays PENDING until the export is done (after
``polls_to_complete`` status reads, or ``export_seconds`` on Indicative's clock), then answers
COMPLETE with ``filename``. The doc: the job "upload[s] the final result to Amazon S3"
(indicative-segments-export.md:5) and its example filename is
``s3://upload-bucket/path/to/<exportId>.csv`` (indicative-segments-export.md:101). So at
completion the CSV (or gzip) file is put in the simulator's S3-like storage
(``simulator.storage``, another origin) and ``filename`` is a presigned URL of it; with
``filename_style = "s3"`` it is uploaded to a real S3 API (moto, ``simulator.s3``) and
``filename`` is the ``s3://`` URI.

Retention (indicative-segments-export.md:82 "Once the request has been completed, the file
will remain in Amazon for no more than 48 hours"): 48 hours after an export's ``endTime`` on
Indicative's clock its status answers 404 and its file is deleted from the storage (or the S3
API), so its URL answers 403 AccessDenied, as S3 does for a missing key (an expired presigned
URL is a 403 AccessDenied too, on the storage's own clock, ``sim.storage.clock``).

Indicative's clock (``now()``) is the wall clock plus ``date_skew_seconds`` plus what
``advance_clock(hours)`` added; ``startTime``, ``endTime``, a touched ``lastRun``, the
``Date`` header, Retry-After dates and the retention all read it. ``age_export(id, hours)``
moves one export's times back instead.

In process: ``now()``, ``advance_clock(hours)``, ``age_export(export_id, hours)``,
``touch(segment_id)``, ``trigger_count()``, ``trigger_counts()``, ``status_polls()``,
``poll_count()``, ``stats()``, ``member_rows(segment_id)``. Control endpoints (under
``/_sim/indicative``): ``POST /touch`` {"segmentId"}, ``POST /age`` {"exportId", "hours"},
``POST /clock`` {"hours"}, ``GET /triggers``, ``GET /stats``; an unknown segment or export is
a 404, a body without those fields a 400.
"""

from __future__ import annotations

import base64
import datetime as dt
import heapq
import threading
import typing as t
from dataclasses import dataclass, field

from simulator import data, s3
from simulator.server import Request, Response, VendorApp, error, http_date, json_response

# indicative-segments-export.md:82 "the file will remain in Amazon for no more than 48 hours"
RETENTION = dt.timedelta(hours=48)


def base_time() -> dt.datetime:
    """Segments were last refreshed in the 72 hours before midnight (UTC) of today.

    our choice: relative to the day the simulator runs, so that a start_date a few days back
    selects them on any date; the same all day, so two simulators of one seed agree.
    """
    return dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


#: Members per segment: one count for all, a count per segment index (absent: 0; keys may be
#: strings, as JSON sends them to ``/_sim/indicative/config``), or a function of the index.
RowsPerSegment = int | dict[int, int] | t.Callable[[int], int]


@dataclass
class Export:
    export_id: str
    segment_id: str
    started: dt.datetime  # on Indicative's clock
    polls: int = 0  # status reads answered with the export (429s not counted)
    status: str = "PENDING"
    ended: dt.datetime | None = None
    throttled: int = 0  # status reads answered 429
    bucket: str = ""
    file_key: str | None = None  # where the file was put at completion
    file_uri: str = ""  # s3://bucket/key when uploaded to a real S3 API
    gone: bool = False  # past the retention: status 404, file deleted


@dataclass
class IndicativeConfig:
    """Sizes and behaviour of the simulated Indicative project.

    An export is done after ``polls_to_complete`` status reads, or, when ``export_seconds``
    is set, that many seconds after its trigger on Indicative's clock. Exports of
    ``fail_segments`` (segment indexes or segmentIds) end FAILED. ``retry_after`` is sent on
    every status answer."""

    segments: int = 5
    rows_per_segment: RowsPerSegment = 50
    polls_to_complete: int = 3
    export_seconds: float | None = None
    gzip: bool = False
    # indicative-segments-export.md:55 status "Values are either PENDING, COMPLETE, or FAILED."
    fail_segments: set[int | str] = field(default_factory=set)
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
    #: Seconds Indicative's clock is ahead of ours (negative: behind): its ``Date`` header, any
    #: Retry-After date and the times it answers are on its clock. our choice: servers' clocks
    #: drift.
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
        self.exports: dict[str, Export] = {}
        self.triggers: dict[str, int] = {}
        self.clock_offset = dt.timedelta(0)
        #: (moment its retention ends, sequence, exportId) of every export whose file is
        #: stored: ``sweep`` deletes files in order without scanning every export.
        self._retention: list[tuple[dt.datetime, int, str]] = []
        self._sequence = 0
        self.lock = threading.Lock()
        self.segments = [self._segment(i) for i in range(config.segments)]
        self.route("GET", "/service/v1/segments/list", self.list_segments)
        self.route("POST", "/service/v1/segments/export/?", self.trigger)
        self.route("GET", "/service/v1/segments/export/(?P<export_id>[^/]+)", self.status)

    @property
    def polls_to_complete(self) -> int:
        return self.config.polls_to_complete

    @polls_to_complete.setter
    def polls_to_complete(self, value: int) -> None:
        self.config.polls_to_complete = value

    # -- data ----------------------------------------------------------------------------

    def _segment(self, index: int) -> dict[str, t.Any]:
        r = data.rng(self.seed, "indicative-segment", index)
        never_run = index % 4 == 3
        last_run = base_time() - dt.timedelta(
            hours=r.randint(1, 72), milliseconds=r.randint(0, 999)
        )
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
            count = rows.get(index)
            return int(t.cast(dict[str, int], rows).get(str(index), 0) if count is None else count)
        return int(rows(index)) if callable(rows) else int(rows)

    def member_rows(self, segment_id: str) -> list[dict[str, str]]:
        """The rows an export of this segment holds (for exact comparisons in small tests)."""
        index = self.segment_index(segment_id)
        assert index is not None
        return [data.member_row(self.seed, segment_id, i) for i in range(self.rows_of(index))]

    def fails(self, segment_id: str) -> bool:
        """Whether exports of this segment end FAILED (``fail_segments``: index or id)."""
        failing = self.config.fail_segments
        return self.segment_index(segment_id) in failing or segment_id in failing

    # -- Indicative's clock and the retention -----------------------------------------------

    def now(self) -> dt.datetime:
        """Indicative's clock: the wall clock, ``date_skew_seconds`` ahead, moved by
        ``advance_clock``."""
        skew = dt.timedelta(seconds=self.config.date_skew_seconds)
        return dt.datetime.now(dt.timezone.utc) + skew + self.clock_offset

    def advance_clock(self, hours: float) -> None:
        """Move Indicative's clock ``hours`` on: every export so far gets that much older
        (past the retention: status 404, file deleted). The storage's clock does not move."""
        with self.lock:
            self.clock_offset += dt.timedelta(hours=hours)
        self.sweep()

    def age_export(self, export_id: str, hours: float) -> None:
        """Make one export ``hours`` older: its startTime and endTime move back (past the
        retention: status 404, file deleted). KeyError for an unknown export."""
        shift = dt.timedelta(hours=hours)
        with self.lock:
            export = self.exports[export_id]
            export.started -= shift
            if export.ended is not None:
                export.ended -= shift
                if export.file_key is not None and not export.gone:
                    self._watch(export)
        self.sweep()

    def touch(self, segment_id: str) -> None:
        """Refresh a segment: its lastRun becomes now on Indicative's clock. KeyError for an
        unknown segment."""
        index = self.segment_index(segment_id)
        if index is None:
            raise KeyError(segment_id)
        with self.lock:
            self.segments[index]["lastRun"] = data.iso_millis(self.now())

    def expired(self, export: Export) -> bool:
        """Past the retention: 48 h after endTime (indicative-segments-export.md:82 "Once the
        request has been completed, the file will remain in Amazon for no more than 48
        hours"). our choice: FAILED exports too, and a still PENDING one 48 h after its
        startTime."""
        if export.gone:
            return True
        return self.now() - (export.ended or export.started) > RETENTION

    def _watch(self, export: Export) -> None:
        assert export.ended is not None
        self._sequence += 1
        entry = (export.ended + RETENTION, self._sequence, export.export_id)
        heapq.heappush(self._retention, entry)

    def sweep(self) -> None:
        """Delete the files of exports past the retention (run on every request to this
        vendor, its control endpoints, and when its clock moves)."""
        doomed: list[Export] = []
        with self.lock:
            now = self.now()
            while self._retention and self._retention[0][0] < now:
                _, _, export_id = heapq.heappop(self._retention)
                export = self.exports.get(export_id)
                if export is None or export.gone:
                    continue
                if self.expired(export):
                    export.gone = True
                    doomed.append(export)
                else:  # its times moved forward since (a negative age): watch it again
                    self._watch(export)
        for export in doomed:
            self.delete_file(export)

    def delete_file(self, export: Export) -> None:
        if export.file_key is None:
            return
        if export.file_uri.startswith("s3://"):
            s3.delete(t.cast(str, self.config.s3_endpoint_url), export.bucket, export.file_key)
        elif self.storage is not None:
            self.storage.delete(export.bucket, export.file_key)

    # -- counters -----------------------------------------------------------------------------

    def trigger_count(self) -> int:
        return sum(self.triggers.values())

    def trigger_counts(self) -> dict[str, int]:
        """Exports triggered per segmentId (every segment, 0 when never)."""
        return {s["segmentId"]: self.triggers.get(s["segmentId"], 0) for s in self.segments}

    def status_polls(self) -> dict[str, int]:
        """Status reads answered per exportId, 429s included (not the 404s of unknown or
        expired exports, nor the 403s of a project without export access)."""
        with self.lock:
            return {key: export.polls + export.throttled for key, export in self.exports.items()}

    def poll_count(self) -> int:
        return sum(self.status_polls().values())

    def stats(self) -> dict[str, t.Any]:
        return {
            "triggers": self.trigger_counts(),
            "status_polls": self.status_polls(),
            "trigger_count": self.trigger_count(),
            "poll_count": self.poll_count(),
            "now": data.iso_millis(self.now()),
        }

    # -- API -----------------------------------------------------------------------------

    @property
    def clock_skew_seconds(self) -> float:  # type: ignore[override]
        """our choice: the ``Date`` header is on Indicative's clock (see ``now``), moved
        clock included, so Retry-After dates read against it stay right."""
        return self.config.date_skew_seconds + self.clock_offset.total_seconds()

    def dispatch(self, request: Request) -> Response:
        self.sweep()
        return super().dispatch(request)

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
        body = request.json()
        # indicative-segments-export.md:49 "POST body, containing the following fields" and the
        # example's body (lines 61-64) carries segmentId. our choice: without it, or with a
        # body that is not a JSON object, 400; an unknown segment, 404.
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object with segmentId")
        segment_id = body.get("segmentId")
        if not isinstance(segment_id, str) or not segment_id:
            return error(400, "segmentId is required")
        if self.segment_index(segment_id) is None:
            return error(404, f"unknown segment {segment_id!r}")
        # indicative-segments-export.md:63 "outputFormat": "csv" is the only format the doc shows;
        # our choice: it may be left out, any other is refused.
        if body.get("outputFormat", "csv") != "csv":
            return error(400, f"unsupported outputFormat {body.get('outputFormat')!r}")
        with self.lock:
            self.triggers[segment_id] = self.triggers.get(segment_id, 0) + 1
            count = sum(self.triggers.values())
            export_id = data.stable_uuid(self.seed, "indicative-export", segment_id, count)
            export = Export(export_id, segment_id, self.now())
            self.exports[export_id] = export
        return json_response(self.export_object(export))

    def status(self, request: Request) -> Response:
        if not self.config.export_api_access:
            return self.no_export_access()
        with self.lock:
            export = self.exports.get(request.match["export_id"]) if request.match else None
            if export is not None and self.config.export_seconds is not None:
                self.advance(export)  # done on Indicative's clock, polled or not
            if export is None or self.expired(export):
                # our choice: the doc says only "a new request must be submitted" (line 82)
                return error(404, "export not found")
            throttled = export.throttled < self.config.throttle_polls
            if throttled:
                export.throttled += 1
            else:
                export.polls += 1
                self.advance(export)
            shown = self.export_object(export)
        if throttled:
            return self.too_many_requests()
        answer = json_response(shown)
        if self.config.retry_after:
            answer.headers["Retry-After"] = self.config.retry_after
        return answer

    def too_many_requests(self) -> Response:
        """429 with Retry-After in seconds, or as a date on Indicative's (skewed) clock."""
        wait = self.config.retry_after_seconds
        answer = error(429, "Too Many Requests")
        if self.config.retry_after_form == "date":
            server_now = self.now()
            answer.headers["Date"] = http_date(server_now)
            answer.headers["Retry-After"] = http_date(server_now + dt.timedelta(seconds=wait))
        else:
            answer.headers["Retry-After"] = str(int(wait) if wait == int(wait) else wait)
        return answer

    # -- export lifecycle ---------------------------------------------------------------------

    def advance(self, export: Export) -> None:
        """End a PENDING export once it is done: COMPLETE with its file stored, or FAILED."""
        if export.status != "PENDING":
            return
        if self.config.export_seconds is not None:
            # indicative-segments-export.md:58 endTime "The time at which the User Segment
            # export completed": when it finished on Indicative's clock, not when it was read.
            done_at = export.started + dt.timedelta(seconds=self.config.export_seconds)
            if self.now() < done_at:
                return
        elif export.polls >= self.config.polls_to_complete:
            done_at = self.now()
        else:
            return
        export.status = "FAILED" if self.fails(export.segment_id) else "COMPLETE"
        export.ended = done_at
        if export.status == "COMPLETE" and not self.expired(export):
            self.store_file(export)
            self._watch(export)

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

    def export_object(self, export: Export) -> dict[str, t.Any]:
        index = t.cast(int, self.segment_index(export.segment_id))
        shown = {
            "exportId": export.export_id,
            "segment": dict(self.segments[index]),
            "status": export.status,
            "projectId": self.segments[index]["projectId"],
            "startTime": data.iso_millis(export.started),
            # indicative-segments-export.md:58 "This field will remain null until the export
            # is completed."
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
        """``/_sim/indicative/...``: ``GET /triggers``, ``GET /stats``, ``POST /touch``
        {"segmentId"}, ``POST /age`` {"exportId", "hours"}, ``POST /clock`` {"hours"}."""
        self.sweep()
        if request.method == "GET" and request.path == "/triggers":
            return json_response(self.trigger_counts())
        if request.method == "GET" and request.path == "/stats":
            return json_response(self.stats())
        if request.method != "POST" or request.path not in ("/touch", "/age", "/clock"):
            return None
        try:
            body = request.json()
        except ValueError as exc:  # json.JSONDecodeError
            return error(400, f"the {request.path} body is not JSON: {exc}")
        wanted = {"/touch": ("segmentId",), "/age": ("exportId", "hours"), "/clock": ("hours",)}
        missing = [name for name in wanted[request.path] if name not in (body or {})]
        if not isinstance(body, dict) or missing:
            return error(400, f"the {request.path} body must be a JSON object with {missing}")
        try:
            hours = float(body.get("hours", 0))
        except (TypeError, ValueError):
            return error(400, f"hours must be a number, not {body['hours']!r}")
        if request.path == "/touch":
            if self.segment_index(str(body["segmentId"])) is None:
                return error(404, f"unknown segment {body['segmentId']!r}")
            self.touch(str(body["segmentId"]))
        elif request.path == "/age":
            if str(body["exportId"]) not in self.exports:
                return error(404, f"unknown export {body['exportId']!r}")
            self.age_export(str(body["exportId"]), hours)
        else:
            self.advance_clock(hours)
        return json_response({"ok": True, "now": data.iso_millis(self.now())})
