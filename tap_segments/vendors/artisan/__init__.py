"""Artisan: apps, segments, jobs, profiles and segment members."""

from tap_segments.vendors import Vendor
from tap_segments.vendors.artisan.api import ArtisanAPI
from tap_segments.vendors.artisan.settings import ArtisanSettings
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
    settings=ArtisanSettings,
    client=ArtisanAPI,
    streams=(AppsStream, SegmentsStream, JobsStream, ProfilesStream, SegmentMembersStream),
)
