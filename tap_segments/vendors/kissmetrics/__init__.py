"""Kissmetrics: reports and the results of report runs over date windows."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.kissmetrics.api import KissmetricsAPI
from tap_segments.vendors.kissmetrics.settings import KissmetricsSettings
from tap_segments.vendors.kissmetrics.streams import ReportResultsStream, ReportsStream

VENDOR = Vendor(
    name="kissmetrics",
    label="Kissmetrics",
    settings=KissmetricsSettings,
    client=KissmetricsAPI,
    streams=(ReportsStream, ReportResultsStream),
)
