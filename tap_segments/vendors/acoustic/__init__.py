"""Acoustic Exchange: jobs, scheduled jobs and the segment data files of export jobs."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.acoustic.api import AcousticAPI
from tap_segments.vendors.acoustic.settings import AcousticSettings
from tap_segments.vendors.acoustic.streams import (
    JobsStream,
    ScheduledJobsStream,
    SegmentDataStream,
)

VENDOR = Vendor(
    name="acoustic",
    label="Acoustic Exchange",
    settings=AcousticSettings,
    client=AcousticAPI,
    streams=(JobsStream, ScheduledJobsStream, SegmentDataStream),
)
