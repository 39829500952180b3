"""Time helpers every layer uses: the one clock, timestamp parsing, ISO and epoch forms.

Imports nothing of the tap. ``now()`` is the only clock the tap reads for dates (export ages,
Kissmetrics windows, Retry-After dates); tests install their own with ``set_clock``.
"""

from __future__ import annotations

import datetime as dt
import typing as t

UTC = dt.timezone.utc


def _system_clock() -> dt.datetime:
    return dt.datetime.now(UTC)


Clock = t.Callable[[], dt.datetime]
_clock: Clock = _system_clock


def now() -> dt.datetime:
    """The current time, aware, in UTC, from the clock ``set_clock`` installed."""
    return _clock()


def set_clock(clock: Clock | None) -> Clock:
    """Make ``clock`` the tap's clock (None: the system clock); returns the previous one."""
    global _clock
    previous, _clock = _clock, clock or _system_clock
    return previous


def parse_timestamp(value: str) -> dt.datetime:
    """An aware datetime from ISO-8601 text; naive values are taken as UTC.

    ``datetime.fromisoformat`` reads the common forms fast (with ``Z`` made ``+00:00`` for
    Python 3.10); anything else it refuses (``+0000`` offsets, week dates, ...) is read by
    pendulum. ``ValueError`` when neither can.
    """
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        import pendulum  # only for the rarer forms: keeps start-up light

        try:
            parsed = pendulum.parse(text, strict=False)  # type: ignore[assignment]
        except Exception as exc:  # pendulum raises its own ParserError
            raise ValueError(f"{value!r} is not an ISO-8601 date-time") from exc
        if not isinstance(parsed, dt.datetime):
            raise ValueError(f"{value!r} is not an ISO-8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: dt.datetime) -> str:
    """``2026-11-20T08:00:00+00:00``: seconds precision, UTC."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def utc_day(moment: dt.datetime) -> dt.datetime:
    """Midnight (UTC) of the day ``moment`` falls in."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def epoch_millis(value: t.Any) -> int | None:
    """Epoch milliseconds from epoch-ms numbers, numeric strings or ISO-8601 text.

    ``ValueError`` for text that is none of these.
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    return int(parse_timestamp(text).timestamp() * 1000)


def iso_from_millis(millis: int | None) -> str | None:
    if millis is None:
        return None
    return dt.datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="milliseconds")
