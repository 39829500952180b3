"""tap-segments: a Singer tap for audience segments, profiles, jobs, exports and reports."""

from tap_segments import deferred

deferred.install()  # before the SDK is imported: see there
