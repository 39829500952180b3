"""Kissmetrics report windows and their bookmarks: plain date arithmetic, no I/O.

A report is run once per window: UTC days ``[start, end)`` of ``kissmetrics_window_days``,
from the report's bookmark up to the start of today (only finished days are loaded, no
window ends in the future). A report without a bookmark starts at ``start_date`` (at the
start of its UTC day) or, without ``start_date``, ``DEFAULT_LOOKBACK`` ago.

Windows finish out of order, so a report's bookmark moves only over an unbroken run of
windows whose every row was emitted::

    {"done_through": "<end of the last window of the unbroken run>",
     "done_ahead": {"<window_start>": "<window_end>", ...}}   # emitted past a gap

``done_ahead`` windows are not run again and fold into ``done_through`` when the gap closes.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from tap_segments.timeutil import iso, parse_timestamp, utc_day

DEFAULT_LOOKBACK = dt.timedelta(days=7)
#: The two date forms the doc documents for a run's body: its prose says "Unix timestamps
#: in seconds", its example sends ISO-8601 strings ("2015-06-02T20:00:00-04:00").
DATE_FORMS = ("iso", "unix")


@dataclass(frozen=True)
class Window:
    """One run of one report over ``[start, end)``."""

    report_id: str
    start: dt.datetime
    end: dt.datetime

    @property
    def key(self) -> str:
        """The engine's key for the run of this window, stable across syncs."""
        return f"{self.report_id}/{iso(self.start)}"

    @classmethod
    def from_key(cls, key: str, end: str) -> Window:
        """The window of an engine key (``<report id>/<window_start>``) and its end."""
        report_id, _, start = key.rpartition("/")
        return cls(report_id, parse_timestamp(start), parse_timestamp(end))

    def __str__(self) -> str:
        return f"report {self.report_id}, window {iso(self.start)}/{iso(self.end)}"

    def run_body(self, form: str) -> dict[str, t.Any]:
        """The run request's dates; the end is one second before the next window, as in the
        doc's example (``"end_date": "2015-06-09T19:59:59-04:00"``)."""
        last = self.end - dt.timedelta(seconds=1)
        if form == "unix":
            return {"start_date": int(self.start.timestamp()), "end_date": int(last.timestamp())}
        return {"start_date": iso(self.start), "end_date": iso(last)}

    def fields(self) -> dict[str, str]:
        return {
            "report_id": self.report_id,
            "window_start": iso(self.start),
            "window_end": iso(self.end),
        }


def default_start(start_date: str | None, now: dt.datetime) -> dt.datetime:
    """Where a report without a bookmark starts: ``start_date``'s day, else 7 days ago."""
    if start_date:
        return utc_day(parse_timestamp(start_date))
    return utc_day(now - DEFAULT_LOOKBACK)


def plan_windows(
    first_start: dt.datetime,
    size: dt.timedelta,
    until: dt.datetime,
    done_ahead: t.Mapping[str, str],
    in_flight: t.Mapping[str, str],
) -> t.Iterator[tuple[dt.datetime, dt.datetime]]:
    """Windows to run, from ``first_start`` in steps of ``size``, none ending after ``until``.

    Windows already emitted (``done_ahead``: start -> end) are skipped; a run in flight
    (``in_flight``: start -> end) keeps the window it was started for, even if
    ``kissmetrics_window_days`` changed since.
    """
    start = first_start
    while True:
        key = iso(start)
        if key in done_ahead:
            start = parse_timestamp(done_ahead[key])
            continue
        end = parse_timestamp(in_flight[key]) if key in in_flight else start + size
        if end > until:
            return
        yield start, end
        start = end


def advance_bookmark(
    done_through: str, done_ahead: t.Mapping[str, str], start: str, end: str
) -> tuple[str, dict[str, str]]:
    """The report's bookmark after window ``[start, end)`` was emitted: ``done_through``
    moves over every window that now follows it without a gap."""
    ahead = {**done_ahead, start: end}
    while done_through in ahead:
        done_through = ahead.pop(done_through)
    return done_through, ahead
