"""Indicative (mParticle Analytics): user segments and their asynchronous exports."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.indicative.api import IndicativeAPI
from tap_segments.vendors.indicative.settings import IndicativeSettings
from tap_segments.vendors.indicative.streams import (
    SegmentExportsStream,
    SegmentMembersStream,
    SegmentsStream,
)

VENDOR = Vendor(
    name="indicative",
    label="Indicative",
    settings=IndicativeSettings,
    client=IndicativeAPI,
    streams=(SegmentsStream, SegmentExportsStream, SegmentMembersStream),
)
