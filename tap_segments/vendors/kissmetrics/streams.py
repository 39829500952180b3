"""Kissmetrics streams: ``kissmetrics_reports`` and ``kissmetrics_report_results``.

``kissmetrics_report_results`` runs each report once per date window: UTC days
``[window_start, window_end)`` of ``kissmetrics_window_days``, from the report's bookmark up
to the start of today, so only finished days are loaded and no window ends in the future.
A report without a bookmark starts at ``start_date`` (at the start of its UTC day) or, when
``start_date`` is not set, 7 days ago (logged). Each window is one export for the shared
engine: POST the report's ``run`` link, follow ``Location`` to the status, poll it, then
page the results; windows of every report run concurrently (``max_concurrent_exports``).

Bookmarks. Windows finish out of order, so the bookmark is kept per report, in this
stream's state, and moves only over an unbroken run of windows whose every page was
emitted::

    "report_windows": {"<report id>": {
        "done_through": "<end of the last window of the unbroken run>",
        "done_ahead": {"<window_start>": "<window_end>", ...}}}   # emitted past a gap

``done_ahead`` windows are not run again and fold into ``done_through`` when the gap
closes. Runs in flight are the engine's ``exports_in_flight`` (keyed
``<report id>/<window_start>``); a resumed run keeps the window it was started for.

The SDK's own ``replication_key_value`` (on ``window_end``) is kept consistent with that:
it is the earliest ``done_through`` of the reports of the run (every report is loaded up to
there), written whenever a window is done. It is a summary for Singer tooling and readers
of the state; the tap itself starts each report at its own ``done_through``. The SDK's
per-record bookmark (the largest ``window_end`` seen, promoted at the end of the sync) is
switched off: records arrive out of window order, so a largest value would claim windows
not yet emitted. Why not SDK state partitions per report: the SDK syncs partitions one
after the other, while the engine runs the windows of every report at once in one sync.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urljoin, urlsplit

from singer_sdk import typing as th

from tap_segments.client import endpoint_of
from tap_segments.errors import ExportFileGoneError, MalformedResponseError
from tap_segments.exports.engine import (
    ExportFile,
    ExportJob,
    ExportRequest,
    ExportStatus,
    PollResult,
    parse_timestamp,
)
from tap_segments.exports.streams import AsyncExportStream
from tap_segments.vendors.kissmetrics.client import (
    REPORTS_PATH,
    KissmetricsStream,
    ResultsPaginator,
    link,
    next_location,
)

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

DEFAULT_LOOKBACK = dt.timedelta(days=7)
WINDOWS_KEY = "report_windows"
LINK = th.ObjectType(
    th.Property("templated", th.BooleanType),
    th.Property("href", th.StringType),
    th.Property("rel", th.StringType),
    th.Property("name", th.StringType),
)


class ReportsStream(KissmetricsStream):
    """``GET /core/reports``: every report the token may read, HAL ``links`` kept."""

    name = "kissmetrics_reports"
    path = REPORTS_PATH
    primary_keys = ("id",)
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType),
        th.Property("report_type", th.StringType),
        th.Property("account_id", th.StringType),
        th.Property("product_id", th.StringType),
        th.Property("created_at", th.DateTimeType),
        th.Property("links", th.ArrayType(LINK)),
    ).to_dict()

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self.list_reports()


# -- windows and bookmarks (pure) -----------------------------------------------------------


def utc_day(moment: dt.datetime) -> dt.datetime:
    """Midnight (UTC) of the day ``moment`` falls in."""
    return moment.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Window:
    """One run of one report over ``[start, end)``."""

    report_id: str
    start: dt.datetime
    end: dt.datetime

    @property
    def key(self) -> str:
        """The engine's key for the run of this window, stable across syncs."""
        return f"{self.report_id}/{iso(self.start)}"

    @classmethod
    def of_job(cls, job: ExportJob) -> Window:
        report_id, _, start = job.key.rpartition("/")
        return cls(report_id, parse_timestamp(start), parse_timestamp(job.data["window_end"]))

    def __str__(self) -> str:
        return f"report {self.report_id}, window {iso(self.start)}/{iso(self.end)}"

    def run_body(self) -> dict[str, str]:
        # The doc's prose says "Unix timestamps in seconds", but its example request sends
        # ISO-8601 strings with the end one second before the next window
        # ("2015-06-09T19:59:59-04:00"); we send what the example sends.
        return {
            "start_date": iso(self.start),
            "end_date": iso(self.end - dt.timedelta(seconds=1)),
        }

    def fields(self) -> dict[str, str]:
        return {
            "report_id": self.report_id,
            "window_start": iso(self.start),
            "window_end": iso(self.end),
        }


def plan_windows(
    first_start: dt.datetime,
    size: dt.timedelta,
    until: dt.datetime,
    done_ahead: t.Mapping[str, str],
    in_flight: t.Mapping[str, str],
) -> t.Iterator[tuple[dt.datetime, dt.datetime]]:
    """Windows to run, from ``first_start`` in steps of ``size``, none ending after ``until``.

    Windows already emitted (``done_ahead``: start -> end) are skipped; a run in flight
    (``in_flight``: start -> end) keeps the window it was started for, even if
    ``kissmetrics_window_days`` changed since.
    """
    start = first_start
    while True:
        key = iso(start)
        if key in done_ahead:
            start = parse_timestamp(done_ahead[key])
            continue
        end = parse_timestamp(in_flight[key]) if key in in_flight else start + size
        if end > until:
            return
        yield start, end
        start = end


def advance_bookmark(
    done_through: str, done_ahead: t.Mapping[str, str], start: str, end: str
) -> tuple[str, dict[str, str]]:
    """The report's bookmark after window ``[start, end)`` was emitted: ``done_through``
    moves over every window that now follows it without a gap."""
    ahead = {**done_ahead, start: end}
    while done_through in ahead:
        done_through = ahead.pop(done_through)
    return done_through, ahead


# -- the stream -----------------------------------------------------------------------------


class ReportResultsStream(KissmetricsStream, AsyncExportStream):
    """Rows of every report run, one run per date window, incremental on ``window_end``."""

    name = "kissmetrics_report_results"
    primary_keys = ("report_id", "window_start", "row_number")
    replication_key = "window_end"
    schema = th.PropertiesList(
        th.Property("report_id", th.StringType, required=True),
        th.Property("window_start", th.DateTimeType, required=True),
        th.Property("window_end", th.DateTimeType, required=True),
        th.Property("row_number", th.IntegerType, required=True),
        th.Property("values", th.ArrayType(th.CustomType({})), description="the row, whole"),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._run_reports: list[str] = []  # report ids of this sync, for the SDK bookmark

    # -- bookmarks -------------------------------------------------------------------------

    @property
    def report_windows(self) -> dict[str, dict[str, t.Any]]:
        return t.cast(dict, self.stream_state.setdefault(WINDOWS_KEY, {}))

    def default_start(self) -> dt.datetime:
        """Where a report without a bookmark starts: ``start_date``, else 7 days ago."""
        start_date = self.config.get("start_date")
        if start_date:
            return utc_day(parse_timestamp(start_date))
        return utc_day(dt.datetime.now(dt.timezone.utc) - DEFAULT_LOOKBACK)

    def done_through(self, report_id: str) -> str:
        saved = self.report_windows.get(report_id, {}).get("done_through")
        return str(saved) if saved else iso(self.default_start())

    def windows(self, report_id: str) -> list[Window]:
        """The report's windows to run now (see ``plan_windows``)."""
        size = dt.timedelta(days=max(1, int(self.config.get("kissmetrics_window_days", 1))))
        prefix = f"{report_id}/"
        in_flight = {
            key[len(prefix) :]: job["data"]["window_end"]
            for key, job in self.exports_in_flight.items()
            if key.startswith(prefix) and job.get("data", {}).get("window_end")
        }
        planned = plan_windows(
            parse_timestamp(self.done_through(report_id)),
            size,
            utc_day(dt.datetime.now(dt.timezone.utc)),
            self.report_windows.get(report_id, {}).get("done_ahead") or {},
            in_flight,
        )
        return [Window(report_id, start, end) for start, end in planned]

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        reports = self.list_reports()
        self._run_reports = []
        for report in reports:
            report_id = str(report.get("id") or "")
            run_href = link(report, "run")
            if not report_id or not run_href:
                self.logger.warning(
                    "Kissmetrics report %r has no id or no `run` link; skipped.", report_id
                )
                continue
            self._run_reports.append(report_id)
            run_url = urljoin(self.absolute_url(REPORTS_PATH), run_href)
            for window in self.windows(report_id):
                yield ExportRequest(window.key, {"window": window, "run_url": run_url})
        self._log_default_start()
        self._write_sdk_bookmark()

    def _log_default_start(self) -> None:
        fresh = [r for r in self._run_reports if r not in self.report_windows]
        if fresh and not self.config.get("start_date"):
            self.logger.info(
                "Kissmetrics: no start_date and no bookmark for %d report(s); their windows "
                "start 7 days ago, at %s. Set start_date to load earlier days.",
                len(fresh),
                iso(self.default_start()),
            )

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        """Every page of the window was emitted: move the report's bookmark."""
        window: Window = request.params["window"]
        entry = self.report_windows.setdefault(window.report_id, {})
        entry["done_through"], entry["done_ahead"] = advance_bookmark(
            self.done_through(window.report_id),
            entry.get("done_ahead") or {},
            iso(window.start),
            iso(window.end),
        )
        self._write_sdk_bookmark()

    def _write_sdk_bookmark(self) -> None:
        """The SDK's ``replication_key_value``: every report of the run is loaded up to it."""
        if self._run_reports:
            self.stream_state["replication_key"] = self.replication_key
            self.stream_state["replication_key_value"] = min(
                map(self.done_through, self._run_reports), key=parse_timestamp
            )

    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """The SDK's per-record bookmark, switched off: it moves per window in ``export_done``."""

    # -- the run: trigger, poll, results ----------------------------------------------------

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        window: Window = request.params["window"]
        response = self.send("POST", request.params["run_url"], json_body=window.run_body())
        status_url = next_location(response, self._body(response), "query-status")
        if not status_url:
            raise self.malformed(
                f"the run of {window} (POST {endpoint_of(response.url)})",
                "a Location header or a query-status link",
            )
        return self.new_job(
            window.key, query_id(status_url), status_url=status_url, window_end=iso(window.end)
        )

    def poll_export(self, job: ExportJob) -> PollResult:
        """200 (or 202) with ``data.progress`` while running; 201 + Location when done."""
        response = self.send("GET", job.data["status_url"], expected_statuses=(404,))
        if response.status_code == HTTPStatus.NOT_FOUND:
            return PollResult(ExportStatus.GONE)
        body = self._body(response)
        data = body.get("data") if isinstance(body, dict) else None
        data = data if isinstance(data, dict) else {}
        if response.status_code != HTTPStatus.CREATED and data.get("completed") is not True:
            progress = fraction(data.get("progress"))
            return PollResult(ExportStatus.RUNNING, progress=progress, message="running")
        results_url = next_location(response, body, "query-results")
        if not results_url:
            raise self.malformed(
                f"the completed status of {Window.of_job(job)} (GET {endpoint_of(response.url)})",
                "a Location header or a query-results link",
            )
        name = f"results of query {job.job_id}"
        return PollResult(ExportStatus.COMPLETED, [ExportFile(results_url, name)], progress=1.0)

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        """Every page of the window's results, each checked against ``pagination.total``."""
        window: Window = request.params["window"]
        fields = window.fields()
        paginator = ResultsPaginator(result.files[0].url)
        total: int | None = None
        while not paginator.finished:
            response = self.send("GET", paginator.url, expected_statuses=(404,))
            if response.status_code == HTTPStatus.NOT_FOUND:
                raise ExportFileGoneError(
                    f"Kissmetrics: the results of {window} (query {job.job_id}) are gone "
                    f"(HTTP 404 for GET {endpoint_of(response.url)})."
                )
            rows, total = self.results_page(response, window, paginator.rows_read, total)
            for number, values in enumerate(rows, start=paginator.rows_read + 1):
                yield {**fields, "row_number": number, "values": values}
            try:
                paginator.advance(response)
            except RuntimeError as exc:  # the SDK's "loop detected in pagination"
                raise self.mismatch(window, total, "the next link repeats the page") from exc
        if paginator.rows_read != total:
            raise self.mismatch(window, total, f"the pages held {paginator.rows_read} row(s)")

    def results_page(
        self, response: requests.Response, window: Window, read: int, total: int | None
    ) -> tuple[list[list[t.Any]], int]:
        """The rows of one page, after checking them against ``pagination``.

        A page must start where the last one ended and hold ``min(limit, total - offset)``
        rows; ``total`` may not change between pages.
        """
        body = self._body(response)
        rows = body.get("data") if isinstance(body, dict) else None
        pagination = body.get("pagination") if isinstance(body, dict) else None
        if (
            not isinstance(rows, list)
            or not all(isinstance(row, list) for row in rows)
            or not isinstance(pagination, dict)
            or not isinstance(pagination.get("total"), int)
        ):
            raise self.malformed(
                f"GET {endpoint_of(response.url)} (results of {window})",
                "data as rows of values and pagination with a total",
            )
        page_total, offset = pagination["total"], pagination.get("offset", read)
        if total is not None and page_total != total:
            raise self.mismatch(window, total, f"a later page says total={page_total}")
        if offset != read:
            raise self.mismatch(window, page_total, f"a page at offset {offset} after {read} rows")
        limit = pagination.get("limit")
        limit = limit if isinstance(limit, int) and limit > 0 else requested_limit(response)
        remaining = page_total - offset
        short = len(rows) < min(limit, remaining) if limit else not rows and remaining > 0
        if short or len(rows) > remaining:
            raise self.mismatch(
                window,
                page_total,
                f"the page at offset {offset} (limit {limit}) holds {len(rows)} row(s)",
            )
        return rows, page_total

    def mismatch(self, window: Window, total: int | None, detail: str) -> MalformedResponseError:
        return MalformedResponseError(
            f"Kissmetrics: the results of {window} disagree with pagination.total={total}: "
            f"{detail}."
        )

    def _body(self, response: requests.Response) -> t.Any:
        return self.json_body(response) if response.content else {}


def query_id(status_url: str) -> str:
    """The query id in ``.../queries/{id}/status`` (the doc's shape), else the whole path."""
    parts = endpoint_of(status_url).rstrip("/").split("/")
    if len(parts) >= 3 and parts[-1] == "status":
        return parts[-2]
    return "/".join(parts)


def requested_limit(response: requests.Response) -> int | None:
    """The ``limit`` the page was asked for (when ``pagination`` leaves it out)."""
    values = parse_qs(urlsplit(response.url).query).get("limit")
    return int(values[0]) if values and values[0].isdigit() else None


def fraction(value: t.Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
