"""Kissmetrics' base stream: Bearer auth on both hosts, HAL links, the results paginator.

Doc: shared/api-docs/kissmetrics-core-api.md. The core host (``kissmetrics_api_base_url``)
lists reports; the query host (``kissmetrics_query_base_url``) runs them. Every URL after the
reports list comes from the API itself (``links`` and ``Location`` headers), so the tap
follows links instead of building query-host URLs. Because of that, the API token is sent
only to the two configured hosts: a link to any other host stops the run with a message
naming it, rather than handing the token to a host the user never configured.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseHATEOASPaginator

from tap_segments.client import VendorStream
from tap_segments.errors import TapSegmentsError

if t.TYPE_CHECKING:
    import requests

REPORTS_PATH = "/core/reports"
RESULTS_PAGE_SIZE = 50  # the doc's example page size
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL, the unit the API token is scoped to."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


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


class KissmetricsStream(VendorStream):
    """Base of the Kissmetrics streams."""

    vendor_label = "Kissmetrics"
    credential_settings = ("kissmetrics_api_token",)

    @property
    def url_base(self) -> str:
        return str(self.config.get("kissmetrics_api_base_url", "https://api.kissmetrics.com"))

    @property
    def query_base(self) -> str:
        return str(self.config.get("kissmetrics_query_base_url", "https://query.kissmetrics.com"))

    @property
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["kissmetrics_api_token"])

    def send(self, method: str, path_or_url: str, **kwargs: t.Any) -> requests.Response:
        """``VendorStream.send``, refusing to carry the token to a host not configured."""
        url = self.absolute_url(path_or_url)
        if origin(url) not in {origin(self.url_base), origin(self.query_base)}:
            parts = urlsplit(url)
            raise TapSegmentsError(
                f"Kissmetrics: the API links to {parts.scheme}://{parts.netloc} ({method} "
                f"{parts.path}), which is neither kissmetrics_api_base_url nor "
                "kissmetrics_query_base_url; the API token is sent only to those two hosts. "
                "If that host is Kissmetrics', set kissmetrics_query_base_url to it."
            )
        return super().send(method, url, **kwargs)

    def list_reports(self) -> list[dict[str, t.Any]]:
        """Every report, limited to ``kissmetrics_report_ids`` when set."""
        reports = self.send_json("GET", REPORTS_PATH)
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise self.malformed(f"GET {REPORTS_PATH}", "a JSON array of reports")
        wanted = {str(r) for r in self.config.get("kissmetrics_report_ids") or []}
        if not wanted:
            return reports
        missing = wanted - {str(r.get("id")) for r in reports}
        if missing:
            self.logger.warning(
                "Kissmetrics: kissmetrics_report_ids names report(s) the token cannot see: %s",
                ", ".join(sorted(missing)),
            )
        return [r for r in reports if str(r.get("id")) in wanted]


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
        self._response: requests.Response | None = None
        self._body: dict[str, t.Any] = {}

    @property
    def url(self) -> str:
        if self.current_value is not None:
            return self.current_value.geturl()
        return with_query(self.results_url, limit=self.page_size, offset=0)

    def _page(self, response: requests.Response) -> dict[str, t.Any]:
        if response is not self._response:
            self._response, self._body = response, response.json()
        return self._body

    def advance(self, response: requests.Response) -> None:
        self.rows_read += len(self._page(response)["data"])
        super().advance(response)

    def has_more(self, response: requests.Response) -> bool:
        return self.rows_read < int(self._page(response)["pagination"]["total"])

    def get_next_url(self, response: requests.Response) -> str | None:
        href = link(self._page(response), "next")
        if href:
            return urljoin(response.url, href)
        return with_query(self.results_url, limit=self.page_size, offset=self.rows_read)
