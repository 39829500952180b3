"""Kissmetrics streams: ``kissmetrics_reports`` and ``kissmetrics_report_results``.

``kissmetrics_report_results`` runs each report once per date window
(``vendors/kissmetrics/windows.py``); each window is one export for the shared engine, and
the windows of every report run concurrently (``max_concurrent_exports``). Runs in flight
are the engine's (keyed ``<report id>/<window_start>``); a resumed run keeps the window it
was started for.

Bookmarks are kept per report in this stream's state (``report_windows``, see
``windows.py``). The SDK's own ``replication_key_value`` (on ``window_end``) is kept
consistent with them: the earliest ``done_through`` of the reports of the run (every report
is loaded up to there), written whenever a window is done. It is a summary for Singer
tooling and readers of the state; the tap itself starts each report at its own
``done_through``. The SDK's per-record bookmark is switched off: records arrive out of
window order, so a largest value would claim windows not yet emitted. Why not SDK state
partitions per report: the SDK syncs partitions one after the other, while the engine runs
the windows of every report at once in one sync.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th

from tap_segments.exports.engine import ExportAPI, ExportRequest, PollResult
from tap_segments.exports.state import ExportJob
from tap_segments.exports.streams import AsyncExportStream
from tap_segments.streams import VendorStream
from tap_segments.timeutil import iso, now, parse_timestamp, utc_day
from tap_segments.vendors.kissmetrics.api import KissmetricsAPI
from tap_segments.vendors.kissmetrics.windows import (
    Window,
    advance_bookmark,
    default_start,
    plan_windows,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

WINDOWS_KEY = "report_windows"
LINK = th.ObjectType(
    th.Property("templated", th.BooleanType),
    th.Property("href", th.StringType),
    th.Property("rel", th.StringType),
    th.Property("name", th.StringType),
)


class KissmetricsStream(VendorStream):
    api: KissmetricsAPI


class ReportsStream(KissmetricsStream):
    """``GET /core/reports``: every report the token may read, HAL ``links`` kept."""

    name = "kissmetrics_reports"
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
        yield from self.api.reports()


class ReportResultsStream(KissmetricsStream, AsyncExportStream):
    """Rows of every report run, one run per date window, incremental on ``window_end``."""

    name = "kissmetrics_report_results"
    primary_keys = ("report_id", "window_start", "row_number")
    replication_key = "window_end"
    per_record_bookmarks = False  # the bookmark moves per window, in export_done
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

    @property
    def export_api(self) -> ExportAPI:
        return self.api

    # -- bookmarks -------------------------------------------------------------------------

    @property
    def report_windows(self) -> dict[str, dict[str, t.Any]]:
        return t.cast(dict, self.stream_state.setdefault(WINDOWS_KEY, {}))

    def default_start(self) -> dt.datetime:
        return default_start(self.common.start_date, now())

    def done_through(self, report_id: str) -> str:
        saved = self.report_windows.get(report_id, {}).get("done_through")
        return str(saved) if saved else iso(self.default_start())

    def windows(self, report_id: str) -> list[Window]:
        """The report's windows to run now (see ``plan_windows``)."""
        in_flight = {
            start: str(job.data["window_end"])
            for start, job in self.exports.jobs_under(f"{report_id}/").items()
            if job.data.get("window_end")
        }
        planned = plan_windows(
            parse_timestamp(self.done_through(report_id)),
            dt.timedelta(days=self.api.settings.window_days),
            utc_day(now()),
            self.report_windows.get(report_id, {}).get("done_ahead") or {},
            in_flight,
        )
        return [Window(report_id, start, end) for start, end in planned]

    def export_requests(self, context: Context | None) -> t.Iterable[ExportRequest]:
        self._run_reports = []
        for report in self.api.reports():
            report_id = str(report.get("id") or "")
            run_url = self.api.run_url(report)
            if not report_id or not run_url:
                self.logger.warning(
                    "Kissmetrics report %r has no id or no `run` link; skipped.", report_id
                )
                continue
            self._run_reports.append(report_id)
            for window in self.windows(report_id):
                yield ExportRequest(window.key, {"window": window, "run_url": run_url})
        self._log_default_start()
        self._write_sdk_bookmark()

    def _log_default_start(self) -> None:
        fresh = [r for r in self._run_reports if r not in self.report_windows]
        if fresh and not self.common.start_date:
            self.logger.info(
                "Kissmetrics: no start_date and no bookmark for %d report(s); their windows "
                "start 7 days ago, at %s. Set start_date to load earlier days.",
                len(fresh),
                iso(self.default_start()),
            )

    def export_done(self, request: ExportRequest, job: ExportJob, result: PollResult) -> bool:
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
        return True

    def _write_sdk_bookmark(self) -> None:
        """The SDK's ``replication_key_value``: every report of the run is loaded up to it."""
        if self._run_reports:
            self.stream_state["replication_key"] = self.replication_key
            self.stream_state["replication_key_value"] = min(
                map(self.done_through, self._run_reports), key=parse_timestamp
            )

    # -- records ---------------------------------------------------------------------------

    def records_for_export(
        self, request: ExportRequest, job: ExportJob, result: PollResult
    ) -> t.Iterable[dict]:
        window: Window = request.params["window"]
        fields = window.fields()
        rows = self.api.result_rows(result.files[0].url, window, job.job_id)
        for number, values in enumerate(rows, start=1):
            yield {**fields, "row_number": number, "values": values}
