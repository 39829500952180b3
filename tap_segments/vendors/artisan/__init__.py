"""Artisan: apps, segments, jobs, profiles and segment members."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.artisan.streams import (
    AppsStream,
    JobsStream,
    ProfilesStream,
    SegmentMembersStream,
    SegmentsStream,
)

VENDOR = Vendor(
    name="artisan",
    label="Artisan",
    required_settings=("artisan_public_api_key", "artisan_secret_api_key"),
    streams=(AppsStream, SegmentsStream, JobsStream, ProfilesStream, SegmentMembersStream),
    check_path="/public/api/apps",
)
