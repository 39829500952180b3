"""tap-segments: a Singer tap for audience segments, profiles, jobs, exports and reports."""
