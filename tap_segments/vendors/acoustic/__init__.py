"""Acoustic Exchange: jobs, scheduled jobs and the segment data files of export jobs."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.acoustic.streams import (
    JobsStream,
    ScheduledJobsStream,
    SegmentDataStream,
)

VENDOR = Vendor(
    name="acoustic",
    label="Acoustic Exchange",
    required_settings=("acoustic_base_url", "acoustic_auth_key"),
    streams=(JobsStream, ScheduledJobsStream, SegmentDataStream),
    check_path="/v1/scheduledjobs/SEGMENT_EXPORT",
)
