"""Kissmetrics' base stream: Bearer auth on both hosts, HAL links, the results paginator.

Doc: shared/api-docs/kissmetrics-core-api.md. The core host lists reports; the query host
runs them. Every URL after the reports list comes from the API itself (``links`` and
``Location`` headers), so the tap follows links instead of building query-host URLs.
"""

from __future__ import annotations

import typing as t

import requests
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import OffsetPaginator

from tap_segments.client import VendorStream

REPORTS_PATH = "/core/reports"
RESULTS_PAGE_SIZE = 50  # the doc's example page size


class KissmetricsStream(VendorStream):
    """Base of the Kissmetrics streams."""

    vendor_label = "Kissmetrics"
    credential_settings = ("kissmetrics_api_token",)

    @property
    def url_base(self) -> str:
        return str(self.config.get("kissmetrics_api_base_url", "https://api.kissmetrics.com"))

    @property
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["kissmetrics_api_token"])

    def list_reports(self) -> list[dict[str, t.Any]]:
        """Every report, limited to ``kissmetrics_report_ids`` when set."""
        reports = self.send_json("GET", REPORTS_PATH)
        if not isinstance(reports, list):
            raise self.malformed(f"GET {REPORTS_PATH}", "a JSON array of reports")
        wanted = set(self.config.get("kissmetrics_report_ids") or [])
        return [r for r in reports if not wanted or str(r.get("id")) in wanted]


def link(document: t.Any, rel: str) -> str | None:
    """The ``href`` of the HAL link with relation ``rel``, if the document has one."""
    links = document.get("links") if isinstance(document, dict) else None
    for item in links or []:
        if isinstance(item, dict) and item.get("rel") == rel and item.get("href"):
            return str(item["href"])
    return None


class ResultsPaginator(OffsetPaginator):
    """limit/offset pages of a query's results, until ``pagination.total`` rows were read."""

    def has_more(self, response: requests.Response) -> bool:
        pagination = response.json().get("pagination") or {}
        total = int(pagination.get("total") or 0)
        return self.current_value + self.page_size < total
