"""Records of file rows, many at a time: the fast path's unit of work.

A ``RecordChunk`` is the records of consecutive rows of one export file, in order. It is
what the fast paths hand around instead of one dict per row: the record loop
(``tap_segments.sdk_adapter``) counts it, checks the record limit and places the periodic
STATE by it, the message writer frames its lines as RECORD messages
(``tap_segments.output``), the batch writer puts its lines (or its columns) into batch
files (``tap_segments.batches``), and worker processes send it to the main process
(``tap_segments.exports.workers``).

- ``RowsChunk`` holds a ``CsvChunk``'s values and the ``RecordLayout`` that makes them
  records: the file's columns under their record names, then the parent fields (the same
  for every row), then the row number. Its JSON lines are encoded by msgspec in one call
  for the whole chunk, through a struct type made for the layout, with the keys in that
  order: byte for byte what msgspec makes of the record dict the per-row path builds.
- ``EncodedChunk`` holds lines already encoded (by a worker process).

Only rows of a ``CsvChunk`` (every value a ``str``) become chunks, so type conformance has
nothing to change in them; whether the rest of the SDK's per-record work would change
nothing is for the stream to decide (``tap_segments.output.FastRecordPlan``).
"""

from __future__ import annotations

import functools
import itertools
import typing as t
from dataclasses import dataclass

import msgspec

from tap_segments.rows import PlainRow

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


@functools.lru_cache(maxsize=64)
def record_struct(names: tuple[str, ...]) -> type[msgspec.Struct]:
    """A struct type that encodes as an object with ``names`` as its keys, in that order."""
    fields = [f"f{index}" for index in range(len(names))]
    return msgspec.defstruct(
        "Record",
        [(field, t.Any) for field in fields],
        rename=dict(zip(fields, names, strict=True)),
        gc=False,  # values are str, int, bool or None: no reference cycles
    )


@dataclass(frozen=True)
class RecordLayout:
    """How rows of one file become records."""

    #: The record names of the file's columns, in the file's order.
    columns: tuple[str, ...]
    #: Fields added to every row (the parent ids), after the columns.
    parents: tuple[tuple[str, t.Any], ...]
    #: The field that numbers the rows, last.
    number_field: str

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.columns, *(name for name, _ in self.parents), self.number_field)

    @property
    def parent_values(self) -> tuple[t.Any, ...]:
        return tuple(value for _, value in self.parents)

    def is_unique(self) -> bool:
        """No two fields share a name (a dict would keep only the last of them)."""
        return len(set(self.names)) == len(self.names)

    def encode(self, rows: list[list[str]], first_number: int) -> bytes:
        """The records' JSON lines (each ends with ``\\n``)."""
        record = record_struct(self.names)
        parents = self.parent_values
        return _ENCODER.encode_lines(
            [record(*values, *parents, n) for n, values in enumerate(rows, first_number)]
        )

    def records(self, rows: list[list[str]], first_number: int) -> t.Iterator[PlainRow]:
        names, parents = self.names, self.parent_values
        for n, values in enumerate(rows, first_number):
            yield PlainRow(zip(names, (*values, *parents, n), strict=True))


class RecordChunk:
    """The records of consecutive rows of one file (see the module docstring)."""

    count: int

    def __len__(self) -> int:
        return self.count

    def body(self) -> bytes:
        """The records as JSON lines, each ending with ``\\n``."""
        raise NotImplementedError

    def records(self) -> t.Iterator[dict[str, t.Any]]:
        """The records one by one."""
        raise NotImplementedError

    def split(self, count: int) -> tuple[RecordChunk, RecordChunk]:
        """The first ``count`` records, and the rest."""
        raise NotImplementedError


class RowsChunk(RecordChunk):
    """Records made from a CSV chunk's values by a layout; encoded when first asked."""

    __slots__ = ("_body", "count", "first_number", "layout", "rows")

    def __init__(self, layout: RecordLayout, rows: list[list[str]], first_number: int) -> None:
        self.layout = layout
        self.rows = rows
        self.first_number = first_number
        self.count = len(rows)
        self._body: bytes | None = None

    def body(self) -> bytes:
        if self._body is None:
            self._body = self.layout.encode(self.rows, self.first_number)
        return self._body

    def records(self) -> t.Iterator[dict[str, t.Any]]:
        return self.layout.records(self.rows, self.first_number)

    def split(self, count: int) -> tuple[RowsChunk, RowsChunk]:
        rows, layout, first = self.rows, self.layout, self.first_number
        return (
            RowsChunk(layout, rows[:count], first),
            RowsChunk(layout, rows[count:], first + count),
        )

    def columns(self) -> tuple[list[str], list[t.Sequence[t.Any]]]:
        """The record's field names and, per field, its values (for columnar files)."""
        count, first = self.count, self.first_number
        values: list[t.Sequence[t.Any]] = (
            list(zip(*self.rows, strict=True)) if self.rows else [[] for _ in self.layout.columns]
        )
        values += [itertools.repeat(v, count) for v in self.layout.parent_values]  # type: ignore[misc]
        values.append(range(first, first + count))
        return list(self.layout.names), values


class EncodedChunk(RecordChunk):
    """Records already encoded as JSON lines (``count`` of them)."""

    __slots__ = ("count", "data")

    def __init__(self, data: bytes, count: int) -> None:
        self.data = data
        self.count = count

    def body(self) -> bytes:
        return self.data

    def records(self) -> t.Iterator[dict[str, t.Any]]:
        for line in self.data.splitlines():
            yield PlainRow(_DECODER.decode(line))

    def split(self, count: int) -> tuple[EncodedChunk, EncodedChunk]:
        if count <= 0:
            return EncodedChunk(b"", 0), self
        if count >= self.count:
            return self, EncodedChunk(b"", 0)
        end = line_end(self.data, count, self.count)
        head, rest = self.data[:end], self.data[end:]
        return EncodedChunk(head, count), EncodedChunk(rest, self.count - count)


def line_end(data: bytes, count: int, lines: int) -> int:
    """The offset just after the ``count``-th line of ``data`` (which has ``lines`` lines):
    guessed from the average line length, then corrected a line at a time."""
    guess = len(data) * count // lines
    before = data.count(b"\n", 0, guess)
    position = guess
    if before < count:
        for _ in range(count - before):
            position = data.index(b"\n", position) + 1
        return position
    for _ in range(before - count + 1):
        position = data.rindex(b"\n", 0, position)
    return position + 1


class WrittenBatch(RecordChunk):
    """Records already written into a BATCH file (by a worker process): its URL."""

    __slots__ = ("count", "url")

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
