"""Kissmetrics streams: ``kissmetrics_reports`` and ``kissmetrics_report_results``.

``kissmetrics_report_results`` runs each report once per date window of
``kissmetrics_window_days`` (UTC days, ``[window_start, window_end)``), from the report's
bookmark (or ``start_date``, or 7 days ago) up to the start of today: only finished days.
Each window is one export for the shared engine: POST the report's ``run`` link, follow the
``Location`` to the status, poll it, then page the results. Windows of all reports run
concurrently, so they finish out of order; the state keeps, per report:

- ``done_through``: the end of the last window of an unbroken run of emitted windows (the
  report's bookmark: the next run starts there), and
- ``done_ahead``: windows emitted beyond a gap (not run again, and folded into
  ``done_through`` once the gap closes).

The SDK's own ``window_end`` bookmark is only promoted at the end of a successful sync.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from http import HTTPStatus

from singer_sdk import typing as th

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
    RESULTS_PAGE_SIZE,
    KissmetricsStream,
    ResultsPaginator,
    link,
)

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

DEFAULT_LOOKBACK = dt.timedelta(days=7)
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


def day_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


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

    # -- windows and their bookmarks ------------------------------------------------------

    @property
    def report_windows(self) -> dict[str, dict[str, t.Any]]:
        return t.cast(dict, self.stream_state.setdefault("report_windows", {}))

    def first_window_start(self, report_id: str) -> dt.datetime:
        saved = self.report_windows.get(report_id, {}).get("done_through")
        if saved:
            return parse_timestamp(saved)
        start_date = self.config.get("start_date")
        if start_date:
            return day_start(parse_timestamp(start_date))
        return day_start(dt.datetime.now(dt.timezone.utc) - DEFAULT_LOOKBACK)

    def windows(self, report_id: str) -> t.Iterator[tuple[dt.datetime, dt.datetime]]:
        """Complete windows from the report's bookmark up to the start of today (UTC)."""
        size = dt.timedelta(days=max(1, int(self.config.get("kissmetrics_window_days", 1))))
        today = day_start(dt.datetime.now(dt.timezone.utc))
        ahead = set(self.report_windows.get(report_id, {}).get("done_ahead", []))
        start = self.first_window_start(report_id)
        while start + size <= today:
            if iso(start) not in ahead:
                yield start, start + size
            start += size

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        for report in self.list_reports():
            report_id = str(report["id"])
            run_url = link(report, "run")
            if not run_url:
                self.logger.warning("Kissmetrics report %s has no `run` link; skipped.", report_id)
                continue
            for start, end in self.windows(report_id):
                yield ExportRequest(
                    key=f"{report_id}/{iso(start)}",
                    params={"report_id": report_id, "run_url": run_url, "start": start, "end": end},
                )

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> None:
        """Mark the window emitted; move ``done_through`` over every window now unbroken."""
        report_id = request.params["report_id"]
        size = request.params["end"] - request.params["start"]
        entry = self.report_windows.setdefault(report_id, {})
        ahead = set(entry.get("done_ahead", [])) | {iso(request.params["start"])}
        through = self.first_window_start(report_id)
        while iso(through) in ahead:
            ahead.discard(iso(through))
            through += size
        entry["done_through"] = iso(through)
        entry["done_ahead"] = sorted(ahead)

    # -- the run: trigger, poll, results --------------------------------------------------

    def where(self, params: t.Mapping[str, t.Any]) -> str:
        return f"report {params['report_id']}, window {iso(params['start'])}/{iso(params['end'])}"

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        params = request.params
        # The doc's prose says Unix timestamps; its example sends ISO-8601 strings with the
        # end one second before the next window. We send what the example sends.
        body = {
            "start_date": iso(params["start"]),
            "end_date": iso(params["end"] - dt.timedelta(seconds=1)),
        }
        response = self.send("POST", params["run_url"], json_body=body)
        answer = self.json_body(response) if response.content else {}
        status_url = response.headers.get("Location") or link(answer, "query-status")
        if not status_url:
            raise self.malformed(
                f"POST run of {self.where(params)}", "a Location header or a query-status link"
            )
        return self.new_job(
            request.key, status_url.rstrip("/").rsplit("/", 2)[-2], status_url=status_url
        )

    def poll_export(self, job: ExportJob) -> PollResult:
        status_url = job.data["status_url"]
        response = self.send("GET", status_url, expected_statuses=(HTTPStatus.NOT_FOUND,))
        if response.status_code == HTTPStatus.NOT_FOUND:
            return PollResult(ExportStatus.GONE)
        answer = self.json_body(response)
        data = answer.get("data") if isinstance(answer, dict) else None
        completed = response.status_code == HTTPStatus.CREATED or bool(
            (data or {}).get("completed")
        )
        progress = (data or {}).get("progress")
        if not completed:
            return PollResult(ExportStatus.RUNNING, progress=_fraction(progress), message="running")
        results_url = response.headers.get("Location") or link(answer, "query-results")
        if not results_url:
            raise self.malformed(
                f"GET {status_url} (query {job.job_id}, {job.key})",
                "a Location header or a query-results link for a completed query",
            )
        return PollResult(
            ExportStatus.COMPLETED,
            files=[ExportFile(url=results_url, name=f"results of query {job.job_id}")],
            progress=1.0,
        )

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        params = request.params
        fields = {
            "report_id": params["report_id"],
            "window_start": iso(params["start"]),
            "window_end": iso(params["end"]),
        }
        results_url = result.files[0].url.split("?", 1)[0]
        paginator = ResultsPaginator(start_value=0, page_size=RESULTS_PAGE_SIZE)
        row_number = 0
        total = 0
        while not paginator.finished:
            query = {"limit": RESULTS_PAGE_SIZE, "offset": paginator.current_value}
            response = self.send("GET", results_url, params=query)
            page, total = self.results_page(response, params)
            for values in page:
                row_number += 1
                yield {**fields, "row_number": row_number, "values": values}
            paginator.advance(response)
        if row_number != total:
            raise self.malformed(
                f"results of {self.where(params)}",
                f"pagination.total={total} rows (pages held {row_number})",
            )

    def results_page(
        self, response: requests.Response, params: t.Mapping[str, t.Any]
    ) -> tuple[list[t.Any], int]:
        answer = self.json_body(response)
        rows = answer.get("data") if isinstance(answer, dict) else None
        pagination = answer.get("pagination") if isinstance(answer, dict) else None
        if not isinstance(rows, list) or not isinstance(pagination, dict):
            raise self.malformed(f"results of {self.where(params)}", "data and pagination")
        return rows, int(pagination.get("total") or 0)


def _fraction(value: t.Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
