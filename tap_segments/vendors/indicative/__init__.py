"""Indicative (mParticle Analytics): user segments and their asynchronous exports."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.indicative.streams import (
    SegmentExportsStream,
    SegmentMembersStream,
    SegmentsStream,
)

VENDOR = Vendor(
    name="indicative",
    label="Indicative",
    required_settings=("indicative_api_key", "indicative_access_token"),
    streams=(SegmentsStream, SegmentExportsStream, SegmentMembersStream),
    check_path="/service/v1/segments/list",
)
