"""Row types shared by the file readers and the record writer. Imports nothing of the tap."""

from __future__ import annotations

import typing as t

Row = dict[str, t.Any]


class PlainRow(dict):
    """A row whose values are all ``str``, ``int``, ``bool`` or ``None``: a CSV row is one.

    The type is a promise to the tap's fast record path (``tap_segments.output``), which
    then skips checking each value. Code that puts any other kind of value into such a row
    must turn it into a plain ``dict`` first (``dict(row)``).
    """

    __slots__ = ()


#: The value types a ``PlainRow`` may hold.
PLAIN_VALUE_TYPES: frozenset[type] = frozenset({str, int, bool, type(None)})
