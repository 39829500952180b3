"""Kissmetrics' core and query APIs, as shared/api-docs/kissmetrics-core-api.md says.

Two hosts, two mounts: ``/kissmetrics-api`` (core: ``GET /core/reports``, whose ``run``
links point at the query mount) and ``/kissmetrics-query`` (``POST
/v2/products/{product}/reports/{report}/run`` answers 202 + Location;
``GET /v2/queries/{id}/status`` answers 202 (queued), then 200 with ``progress`` until the
query is done, then 201 + Location; ``GET /v2/queries/{id}/results?limit&offset`` pages the
rows, with HAL ``self``/``export`` links and, unless switched off, ``next``). Bearer auth.
Rows per window are deterministic from the report id and the window's first UTC day.

The doc disagrees with itself, and each form is behind a switch of ``KissmetricsConfig``:
run dates are "Unix timestamps in seconds" in its prose (kissmetrics-core-api.md:93) and
ISO-8601 strings in its example (kissmetrics-core-api.md:102); the reports list's ``run``
link is on the core host at ``/query/reports/{id}/run`` (kissmetrics-core-api.md:57) while
the run section posts to the query host's ``/v2/products/{product}/reports/{report}/run``
(kissmetrics-core-api.md:98); the results example has no ``next`` link
(kissmetrics-core-api.md:234-247).
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t
from dataclasses import dataclass

from simulator import data
from simulator.server import Request, Response, VendorApp, error, json_response

QUERY_PREFIX = "kissmetrics-query"


@dataclass
class KissmetricsConfig:
    reports: int = 3
    max_rows_per_window: int = 120
    polls_to_complete: int = 3
    token: str = "sim-kissmetrics-token-secret"
    omit_location: bool = False  # a status answer without Location nor link
    total_off_by: int = 0  # pagination.total that disagrees with the pages
    #: Run dates accepted: "iso" (kissmetrics-core-api.md:102, the example:
    #: "2015-06-02T20:00:00-04:00"), "unix" (kissmetrics-core-api.md:93 "as Unix timestamps in
    #: seconds") or "both".
    run_dates: str = "iso"
    #: The answer to a run whose dates are in the form not accepted: 400 or 422 (the doc
    #: names neither; our choice, both are what APIs answer for a body they refuse).
    rejected_date_status: int = 400
    #: A ``next`` link on every results page but the last (our choice); the doc's example
    #: (kissmetrics-core-api.md:234-247) has only ``self`` and ``export``: False leaves it out.
    next_links: bool = True
    #: Reports' ``run`` link: "query" (kissmetrics-core-api.md:98, the query host's v2 path) or
    #: "core" (line 57, https://api.kissmetrics.com/query/reports/{id}/run, on the core host).
    run_link_host: str = "query"
    #: kissmetrics-core-api.md:23-25 "When we require a POST ... you must specify the Content-Type."
    #: True: a run without ``Content-Type: application/json`` answers 415 (our choice of status).
    require_content_type: bool = False


def _hal(rel: str, name: str, href: str) -> dict[str, t.Any]:
    return {"templated": False, "href": href, "rel": rel, "name": name}


def _midnight(moment: dt.datetime) -> dt.datetime:
    """Midnight (UTC) of the day ``moment`` falls in."""
    return moment.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def run_date(value: t.Any) -> tuple[str, dt.datetime] | None:
    """A run date's form ("iso" or "unix") and moment, or None when it is neither: ISO-8601
    with an offset (the example), or Unix seconds (a number, or a string of digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return "unix", dt.datetime.fromtimestamp(int(value), dt.timezone.utc)
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ("iso", moment) if moment.tzinfo is not None else None


def window_day(start: t.Any) -> str:
    """The UTC day (YYYY-MM-DD) a window starts on, whichever form its start came in."""
    parsed = run_date(start)
    if parsed is None:
        return str(start)[:10]
    return parsed[1].astimezone(dt.timezone.utc).strftime("%Y-%m-%d")


class KissmetricsState:
    """What both mounts share: the reports and the queries run."""

    def __init__(self, seed: int, config: KissmetricsConfig) -> None:
        self.seed = seed
        self.config = config
        self.lock = threading.Lock()
        self.queries: dict[str, dict[str, t.Any]] = {}
        self.runs: dict[tuple[str, str], int] = {}  # (report id, start_date as sent) -> runs
        #: (report id, date form) -> runs refused because of their date form
        self.rejected: dict[tuple[str, str], int] = {}
        self.account = data.stable_uuid(seed, "km-account")
        self.product = data.stable_uuid(seed, "km-product")
        self.report_ids = [data.stable_uuid(seed, "km-report", i) for i in range(config.reports)]

    def rows_in_window(self, report_id: str, start: t.Any) -> int:
        day = window_day(start)  # windows are keyed by their first day
        return data.rng(self.seed, "km-rows", report_id, day).randint(
            0, self.config.max_rows_per_window
        )

    def row(self, report_id: str, start: t.Any, index: int) -> list[t.Any]:
        day = window_day(start)
        return [10_000 + index, f"user{index}.{report_id[:8]}.{day}@example.test", index % 7]

    def run(self, request: Request, report_id: str) -> Response:
        """Start a query of ``report_id`` (either host's run path), as the doc's run section."""
        if report_id not in self.report_ids:
            return error(404, "unknown report")
        content_type = request.headers.get("Content-Type") or ""
        if self.config.require_content_type and not content_type.startswith("application/json"):
            return error(415, "Content-Type must be application/json")
        body = request.json() or {}
        start, end = body.get("start_date"), body.get("end_date")
        first, last = run_date(start), run_date(end)
        if first is None or last is None or first[1] >= last[1]:
            return error(400, "start_date and end_date must be dates, start before end")
        accepted = {"iso": ("iso",), "unix": ("unix",), "both": ("iso", "unix")}
        forms = accepted[self.config.run_dates]
        if first[0] not in forms or last[0] not in forms:
            with self.lock:
                key = (report_id, first[0] if first[0] not in forms else last[0])
                self.rejected[key] = self.rejected.get(key, 0) + 1
            wanted = "Unix timestamps in seconds" if forms == ("unix",) else "ISO-8601 dates"
            return error(self.config.rejected_date_status, f"start_date and end_date: {wanted}")
        with self.lock:
            key = (report_id, str(start))
            self.runs[key] = self.runs.get(key, 0) + 1
            query_id = data.stable_uuid(self.seed, "km-query", report_id, start, self.runs[key])
            self.queries[query_id] = {"report": report_id, "start": start, "polls": 0}
        query_base = request.base_url.rsplit("/", 1)[0] + f"/{QUERY_PREFIX}"
        status_url = f"{query_base}/v2/queries/{query_id}/status"
        answer = {
            "meta": {"status": 202},
            "data": {"message": "success"},
            "links": [_hal("query-status", "Status", status_url)],
        }
        return json_response(answer, 202, Location=status_url)


class KissmetricsCoreApp(VendorApp):
    prefix = "kissmetrics-api"
    name = "kissmetrics"

    def __init__(self, state: KissmetricsState) -> None:
        super().__init__()
        self.state = state
        self.route("GET", "/core/reports", self.reports)
        self.route("POST", "/query/reports/(?P<report>[^/]+)/run", self.run)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.state.config.token}"

    def reports(self, request: Request) -> Response:
        query_base = request.base_url.rsplit("/", 1)[0] + f"/{QUERY_PREFIX}"
        core = request.base_url
        return json_response(
            [self.report(i, rid, core, query_base) for i, rid in enumerate(self.state.report_ids)]
        )

    def run(self, request: Request) -> Response:
        """kissmetrics-core-api.md:57's run link, ``/query/reports/{id}/run`` on the core host."""
        assert request.match is not None
        return self.state.run(request, request.match["report"])

    def report(self, index: int, report_id: str, core: str, query: str) -> dict[str, t.Any]:
        product, account = self.state.product, self.state.account
        run = f"{query}/v2/products/{product}/reports/{report_id}/run"
        if self.state.config.run_link_host == "core":
            run = f"{core}/query/reports/{report_id}/run"
        return {
            "links": [
                _hal("self", "Self", f"{core}/core/reports/{report_id}"),
                _hal("run", "Run Report", run),
                _hal("product", "Product", f"{core}/core/products/{product}"),
                _hal("account", "Account", f"{core}/core/accounts/{account}"),
            ],
            "created_at": "2025-12-18T19:27:43+00:00",
            "name": f"People Search {index}",
            "report_type": "people_search_v2",
            "account_id": account,
            "product_id": product,
            "id": report_id,
        }

    def tap_config(self, base_url: str) -> dict[str, t.Any]:
        return {
            "kissmetrics_api_base_url": base_url,
            "kissmetrics_query_base_url": base_url.rsplit("/", 1)[0] + f"/{QUERY_PREFIX}",
            "kissmetrics_api_token": self.state.config.token,
        }

    def truth(self, *, rerun: bool = False) -> dict[str, int]:
        return {
            "kissmetrics_reports": len(self.state.report_ids),
            "kissmetrics_report_results": self.expected_rows(),
        }

    def expected_rows(
        self,
        start_date: str | None = None,
        window_days: int = 1,
        now: dt.datetime | None = None,
    ) -> int:
        """Rows the tap should emit for windows from ``start_date`` (default: 7 days ago)."""
        return sum(self.rows_by_window(start_date, window_days, now).values())

    def rows_by_window(
        self,
        start_date: str | None = None,
        window_days: int = 1,
        now: dt.datetime | None = None,
    ) -> dict[tuple[str, str], int]:
        """Rows per (report id, window start) of every complete UTC-day window from
        ``start_date`` (or 7 days before ``now``) up to the start of ``now``'s day."""
        today = _midnight(now or dt.datetime.now(dt.timezone.utc))
        start = (
            _midnight(dt.datetime.fromisoformat(start_date.replace("Z", "+00:00")))
            if start_date
            else today - dt.timedelta(days=7)
        )
        size = dt.timedelta(days=window_days)
        rows: dict[tuple[str, str], int] = {}
        while start + size <= today:
            day = start.isoformat(timespec="seconds")
            for report_id in self.state.report_ids:
                rows[(report_id, day)] = self.state.rows_in_window(report_id, day)
            start += size
        return rows

    def control(self, request: Request) -> Response | None:
        if request.path == "/runs":
            return json_response({f"{r}|{s}": n for (r, s), n in self.state.runs.items()})
        if request.path == "/rejected":
            return json_response({f"{r}|{f}": n for (r, f), n in self.state.rejected.items()})
        return None

    def settings(self) -> t.Any:
        return self.state.config


class KissmetricsQueryApp(VendorApp):
    prefix = QUERY_PREFIX
    name = "kissmetrics"

    def __init__(self, state: KissmetricsState) -> None:
        super().__init__()
        self.state = state
        self.route(
            "POST", "/v2/products/(?P<product>[^/]+)/reports/(?P<report>[^/]+)/run", self.run
        )
        self.route("GET", "/v2/queries/(?P<query>[^/]+)/status", self.status)
        self.route("GET", "/v2/queries/(?P<query>[^/]+)/results", self.results)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.state.config.token}"

    def settings(self) -> t.Any:
        return self.state.config

    def run(self, request: Request) -> Response:
        assert request.match is not None
        return self.state.run(request, request.match["report"])

    def status(self, request: Request) -> Response:
        assert request.match is not None
        query_id = request.match["query"]
        query = self.state.queries.get(query_id)
        if query is None:
            return error(404, "unknown query")
        with self.state.lock:
            query["polls"] += 1
            polls = query["polls"]
        self_url = f"{request.base_url}/v2/queries/{query_id}/status"
        needed = self.state.config.polls_to_complete
        if polls < needed:
            # The doc shows 200 while running; a query still queued answers 202 here.
            status = 202 if polls == 1 else 200
            body = {
                "meta": {"status": status},
                "data": {"completed": False, "progress": round((polls - 1) / needed, 2)},
                "links": [_hal("self", "Self", self_url)],
            }
            return json_response(body, status)
        results_url = f"{request.base_url}/v2/queries/{query_id}/results"
        links = [_hal("self", "Self", self_url)]
        headers = {}
        if not self.state.config.omit_location:
            links.append(_hal("query-results", "Results", results_url))
            headers["Location"] = results_url
        body = {
            "meta": {"status": 201},
            "data": {"completed": True, "progress": 1.0},
            "links": links,
        }
        return json_response(body, 201, **headers)

    def results(self, request: Request) -> Response:
        assert request.match is not None
        query = self.state.queries.get(request.match["query"])
        if query is None:
            return error(404, "unknown query")
        limit = int(request.arg("limit", "50") or 50)
        offset = int(request.arg("offset", "0") or 0)
        total = self.state.rows_in_window(query["report"], query["start"])
        rows = [
            self.state.row(query["report"], query["start"], i)
            for i in range(offset, min(offset + limit, total))
        ]
        results_url = f"{request.base_url}/v2/queries/{request.match['query']}/results"
        links = [
            _hal("self", "Self", f"{results_url}?limit={limit}&offset={offset}"),
            _hal("export", "Export", results_url.replace("/results", "/export")),
        ]
        if offset + len(rows) < total and self.state.config.next_links:
            next_url = f"{results_url}?limit={limit}&offset={offset + len(rows)}"
            links.append(_hal("next", "Next", next_url))
        return json_response(
            {
                "meta": {"status": 200},
                "data": rows,
                "pagination": {
                    "limit": limit,
                    "offset": offset,
                    "total": total + self.state.config.total_off_by,
                },
                "links": links,
            }
        )


def kissmetrics_apps(seed: int, config: KissmetricsConfig) -> list[VendorApp]:
    """The core and query mounts, sharing one state."""
    state = KissmetricsState(seed, config)
    return [KissmetricsCoreApp(state), KissmetricsQueryApp(state)]
