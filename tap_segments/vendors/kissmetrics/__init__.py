"""Kissmetrics: reports and the results of report runs over date windows."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.kissmetrics.streams import ReportResultsStream, ReportsStream

VENDOR = Vendor(
    name="kissmetrics",
    label="Kissmetrics",
    required_settings=("kissmetrics_api_token",),
    streams=(ReportsStream, ReportResultsStream),
    check_path="/core/reports",
)
