"""Kissmetrics' client: Bearer auth on its two hosts, HAL links, report runs and their pages.

Doc: shared/api-docs/kissmetrics-core-api.md. The core host (``kissmetrics_api_base_url``)
lists reports; the query host (``kissmetrics_query_base_url``) runs them. Every URL after the
reports list comes from the API itself (``links`` and ``Location`` headers), so the client
follows links instead of building query-host URLs. The API token goes only to the two
configured hosts: a link to any other host stops the run with a message naming it.

A run is the shared engine's export: POST the report's ``run`` link with the window's dates
(202 + Location), poll the status (200 with ``progress`` while running; 201 + Location to
the results when done), then page the results, each page checked against ``pagination``.
The run's dates are sent as ISO-8601 first (the doc's example), and as Unix seconds (the
doc's prose) when the API answers 400 or 422 to the first form; the form that worked is
kept for the rest of the run.
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t
from http import HTTPStatus
from urllib.parse import parse_qs, parse_qsl, urlencode, urljoin, urlsplit

from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.pagination import BaseHATEOASPaginator

from tap_segments.errors import ExportFileGoneError, MalformedResponseError, TapSegmentsError
from tap_segments.exports.download import ExportFile
from tap_segments.exports.engine import ExportRequest, ExportStatus, PollResult
from tap_segments.exports.state import ExportJob
from tap_segments.http import endpoint_of, origin_text
from tap_segments.timeutil import iso
from tap_segments.vendors.client import VendorClient
from tap_segments.vendors.kissmetrics.windows import DATE_FORMS, Window

if t.TYPE_CHECKING:
    import logging

    import requests

    from tap_segments.settings import CommonSettings
    from tap_segments.vendors.kissmetrics.settings import KissmetricsSettings

REPORTS_PATH = "/core/reports"
RUN_ENDPOINT = "/v2/products/{product}/reports/{report}/run"
STATUS_ENDPOINT = "/v2/queries/{query}/status"
RESULTS_ENDPOINT = "/v2/queries/{query}/results"
RESULTS_PAGE_SIZE = 50  # the doc's example page size
#: Answers to a run request that mean "not this date form" (then the other form is tried).
DATE_FORM_REJECTED = (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY)


def link(document: t.Any, rel: str) -> str | None:
    """The ``href`` of the HAL link with relation ``rel``, if the document has one."""
    links = document.get("links") if isinstance(document, dict) else None
    for item in links if isinstance(links, list) else []:
        if isinstance(item, dict) and item.get("rel") == rel and item.get("href"):
            return str(item["href"])
    return None


def next_location(response: requests.Response, body: t.Any, rel: str) -> str | None:
    """Where the API sends us next: the ``Location`` header first, else the ``rel`` link.

    The doc gives both on the run answer (``query-status``) and on the completed status
    answer (``query-results``). Relative URLs are resolved against the answer's own URL.
    """
    href = response.headers.get("Location") or link(body, rel)
    return urljoin(response.url, href) if href else None


def with_query(url: str, **params: t.Any) -> str:
    """``url`` with ``params`` set in its query string (other parameters kept)."""
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k not in params}
    query.update({k: str(v) for k, v in params.items()})
    return parts._replace(query=urlencode(query)).geturl()


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


class ResultsPaginator(BaseHATEOASPaginator):
    """Pages of a query's results, until ``pagination.total`` rows were read.

    The next page is the HAL ``next`` link when the API gives one, else the doc's
    ``limit``/``offset`` parameters on the results URL (the doc's example shows only
    ``self`` and ``export`` links). ``url`` is the page to request now; callers check each
    page's shape before calling ``advance``.
    """

    def __init__(self, results_url: str, page_size: int = RESULTS_PAGE_SIZE) -> None:
        super().__init__()
        self.results_url = results_url
        self.page_size = page_size
        self.rows_read = 0
        self.body: dict[str, t.Any] = {}

    @property
    def url(self) -> str:
        if self.current_value is not None:
            return self.current_value.geturl()
        return with_query(self.results_url, limit=self.page_size, offset=0)

    def advance_page(self, response: requests.Response, body: dict[str, t.Any]) -> None:
        self.body = body
        self.rows_read += len(body["data"])
        self.advance(response)

    def has_more(self, response: requests.Response) -> bool:
        return self.rows_read < int(self.body["pagination"]["total"])

    def get_next_url(self, response: requests.Response) -> str | None:
        href = link(self.body, "next")
        if href:
            return urljoin(response.url, href)
        return with_query(self.results_url, limit=self.page_size, offset=self.rows_read)


class KissmetricsAPI(VendorClient):
    """One Kissmetrics account, as its streams read it; also its report runs' ``ExportAPI``."""

    vendor_label = "Kissmetrics"
    vendor_name = "kissmetrics"
    export_retention: dt.timedelta | None = None  # not documented
    triggers_jobs = True
    settings: KissmetricsSettings

    base_url_setting = "kissmetrics_api_base_url"
    headers: t.ClassVar[dict[str, str]] = {"Accept": "application/json"}

    def __init__(
        self, settings: KissmetricsSettings, common: CommonSettings, logger: logging.Logger
    ) -> None:
        super().__init__(settings, common, logger)
        self._date_forms = list(DATE_FORMS)  # the form that worked moves first
        self._date_lock = threading.Lock()

    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.settings.api_token)

    def api_base_urls(self) -> list[str]:
        return [self.settings.api_base_url, self.settings.query_base_url]

    def check(self) -> str:
        self.reports()
        return f"GET {REPORTS_PATH}"

    def reports_url(self) -> str:
        return self.settings.api_base_url.rstrip("/") + REPORTS_PATH

    def require_scope(self, method: str, url: str) -> str:
        """``url`` if the token may go there; else stop naming the host (never send it)."""
        if not self.http.scope.covers(url):
            raise TapSegmentsError(
                f"Kissmetrics: the API links to {origin_text(url)} ({method} {endpoint_of(url)}), "
                "which is neither kissmetrics_api_base_url nor kissmetrics_query_base_url; the "
                "API token is sent only to those two. If that host is Kissmetrics', set "
                "kissmetrics_query_base_url to it."
            )
        return url

    def body(self, response: requests.Response) -> t.Any:
        return self.http.json_body(response) if response.content else {}

    # -- reports ---------------------------------------------------------------------------

    def reports(self) -> list[dict[str, t.Any]]:
        """Every report, limited to ``kissmetrics_report_ids`` when set (one request)."""
        return self.once("reports", self._reports)

    def _reports(self) -> list[dict[str, t.Any]]:
        reports = self.http.get_json(self.reports_url(), endpoint=REPORTS_PATH)
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise self.http.malformed(f"GET {REPORTS_PATH}", "a JSON array of reports")
        wanted = set(self.settings.report_ids)
        if not wanted:
            return reports
        missing = wanted - {str(r.get("id")) for r in reports}
        if missing:
            self.logger.warning(
                "Kissmetrics: kissmetrics_report_ids names report(s) the token cannot see: %s",
                ", ".join(sorted(missing)),
            )
        return [r for r in reports if str(r.get("id")) in wanted]

    def run_url(self, report: dict[str, t.Any]) -> str | None:
        href = link(report, "run")
        return urljoin(self.reports_url(), href) if href else None

    # -- ExportAPI: report runs ------------------------------------------------------------

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        window: Window = request.params["window"]
        run_url = self.require_scope("POST", request.params["run_url"])
        response = self._post_run(run_url, window)
        status_url = next_location(response, self.body(response), "query-status")
        if not status_url:
            raise self.http.malformed(
                f"the run of {window} (POST {endpoint_of(response.url)})",
                "a Location header or a query-status link",
            )
        return ExportJob.new(
            window.key, query_id(status_url), status_url=status_url, window_end=iso(window.end)
        )

    def _post_run(self, run_url: str, window: Window) -> requests.Response:
        """POST the run in the date form that works: the first that is not rejected."""
        forms = list(self._date_forms)
        for form in forms:
            response = self.http.request(
                "POST",
                run_url,
                endpoint=RUN_ENDPOINT,
                json_body=window.run_body(form),
                expected=DATE_FORM_REJECTED,
            )
            if response.status_code not in DATE_FORM_REJECTED:
                self._prefer(form)
                return response
            self.logger.info(
                "Kissmetrics: the run of %s was refused with the %s date form (HTTP %d); "
                "trying the other documented form.",
                window,
                "ISO-8601" if form == "iso" else "Unix seconds",
                response.status_code,
            )
        raise FatalAPIError(
            self.http.error_text(response, f"POST {RUN_ENDPOINT} ({window})")
            + " (both documented date forms were refused)"
        )

    def _prefer(self, form: str) -> None:
        with self._date_lock:
            if self._date_forms[0] != form:
                self._date_forms.remove(form)
                self._date_forms.insert(0, form)

    def poll_export(self, job: ExportJob) -> PollResult:
        """200 (or 202) with ``data.progress`` while running; 201 + Location when done."""
        status_url = self.require_scope("GET", job.data["status_url"])
        response = self.http.request("GET", status_url, endpoint=STATUS_ENDPOINT, expected=(404,))
        if response.status_code == HTTPStatus.NOT_FOUND:
            return PollResult(ExportStatus.GONE)
        body = self.body(response)
        data = body.get("data") if isinstance(body, dict) else None
        data = data if isinstance(data, dict) else {}
        if response.status_code != HTTPStatus.CREATED and data.get("completed") is not True:
            progress = fraction(data.get("progress"))
            return PollResult(ExportStatus.RUNNING, progress=progress, message="running")
        results_url = next_location(response, body, "query-results")
        if not results_url:
            window = Window.from_key(job.key, job.data["window_end"])
            raise self.http.malformed(
                f"the completed status of {window} (GET {endpoint_of(response.url)})",
                "a Location header or a query-results link",
            )
        name = f"results of query {job.job_id}"
        return PollResult(ExportStatus.COMPLETED, [ExportFile(results_url, name)], progress=1.0)

    # -- results ---------------------------------------------------------------------------

    def result_rows(self, results_url: str, window: Window, query: str) -> t.Iterator[list]:
        """Every row of a run's results, page after page, each checked against
        ``pagination``: a page must start where the last ended, hold
        ``min(limit, total - offset)`` rows, and ``total`` may not change."""
        paginator = ResultsPaginator(results_url)
        total: int | None = None
        while not paginator.finished:
            url = self.require_scope("GET", paginator.url)
            response = self.http.request("GET", url, endpoint=RESULTS_ENDPOINT, expected=(404,))
            if response.status_code == HTTPStatus.NOT_FOUND:
                raise ExportFileGoneError(
                    f"Kissmetrics: the results of {window} (query {query}) are gone "
                    f"(HTTP 404 for GET {endpoint_of(response.url)})."
                )
            body = self.body(response)
            rows, total = self.checked_page(response, body, window, paginator.rows_read, total)
            yield from rows
            try:
                paginator.advance_page(response, body)
            except RuntimeError as exc:  # the SDK's "loop detected in pagination"
                raise self.mismatch(window, total, "the next link repeats the page") from exc
        if paginator.rows_read != total:
            raise self.mismatch(window, total, f"the pages held {paginator.rows_read} row(s)")

    def checked_page(
        self,
        response: requests.Response,
        body: t.Any,
        window: Window,
        read: int,
        total: int | None,
    ) -> tuple[list[list[t.Any]], int]:
        rows = body.get("data") if isinstance(body, dict) else None
        pagination = body.get("pagination") if isinstance(body, dict) else None
        if (
            not isinstance(rows, list)
            or not all(isinstance(row, list) for row in rows)
            or not isinstance(pagination, dict)
            or not isinstance(pagination.get("total"), int)
        ):
            raise self.http.malformed(
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

    @staticmethod
    def mismatch(window: Window, total: int | None, detail: str) -> MalformedResponseError:
        return MalformedResponseError(
            f"Kissmetrics: the results of {window} disagree with pagination.total={total}: "
            f"{detail}."
        )
