"""Row types shared by the file readers and the record writers. Imports nothing of the tap."""

from __future__ import annotations

import contextlib
import gc
import typing as t
from dataclasses import dataclass
from itertools import repeat

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


@dataclass(slots=True)
class CsvChunk:
    """Consecutive rows of one CSV file: its header (unique names) and each row's values.

    Every row has exactly one value per column, each a ``str``. A reader hands rows over
    in chunks so that the writers can encode many rows per call instead of one.
    """

    header: list[str]
    rows: list[list[str]]

    def __len__(self) -> int:
        return len(self.rows)

    def plain_rows(self) -> t.Iterator[PlainRow]:
        """The rows one by one, as the per-row readers give them."""
        return map(PlainRow, map(zip, repeat(self.header), self.rows))

    def tail(self, start: int) -> CsvChunk:
        """The rows from ``start`` on."""
        return CsvChunk(self.header, self.rows[start:])


_pauses = 0


@contextlib.contextmanager
def collector_paused() -> t.Iterator[None]:
    """Pause Python's cyclic garbage collector (nestable; main thread only).

    Rows are lists and dicts of plain values: they make no reference cycles and are freed
    as soon as they are written. Created by the thousand, they would prompt the collector
    to scan every young object (them included) after every few hundred of them: measured,
    about a third of the time of reading and writing a CSV file's rows. While paused,
    nothing is lost: garbage with cycles waits for the next collection.
    """
    global _pauses
    if _pauses == 0 and not gc.isenabled():  # paused by someone else: leave it so
        yield
        return
    _pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0:
            gc.enable()
