"""Figures the reliability suite counts, printed at the end of the test session."""

from __future__ import annotations

FIGURES: dict[str, int] = {
    "faults_tried": 0,
    "faults_held": 0,
    "kill_points_survived": 0,
    "rows_lost": 0,
    "exports_retriggered": 0,
    "silent_losses": 0,
    "tracebacks_seen": 0,
}
