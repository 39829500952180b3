"""How the tap writes Singer messages: msgspec encoding, buffered RECORDs, a fast record path.

``TapMessageWriter`` is the SDK's msgspec writer (``singer-sdk[msgspec]``) with two changes:

- RECORD messages are left in stdout's buffer instead of being flushed one by one; every
  other message (SCHEMA, STATE, ACTIVATE_VERSION, BATCH) flushes the buffer. All messages
  go through the same buffer in the order they were written, so whatever a target has read
  at any moment is a prefix of the tap's output: a STATE is never seen before the records
  written ahead of it, and a killed tap loses only records whose STATE it never printed.
- ``write_record`` writes a RECORD from a stream alias and a record without building a
  ``RecordMessage`` first. It produces exactly the bytes the SDK's path produces with this
  writer (same keys, same order, same encoder); only the ``time_extracted`` clock differs.
- ``write_record_chunk`` writes the RECORDs of a ``RecordChunk`` (many rows of a file) at
  once: its records' JSON lines, each framed as the envelope above frames a record, with one
  ``time_extracted`` for the whole chunk (the moment it is written: its rows were read
  together). Same bytes as ``write_record`` of each record at that moment.

``FastRecordPlan`` decides when a stream may hand a record straight to ``write_record``,
skipping SDK per-record work that would change nothing:

- stream maps: the only map is the default ``SameRecordTransform``, without flattening;
- property selection: no property is deselected;
- type conformance: every key of the record is in the schema and every value is a ``str``,
  ``int``, ``bool`` or ``None`` (only ``bool`` or ``None`` under an exclusively boolean
  property). Conformance then returns the record as it was. A ``PlainRow`` (a CSV row, see
  ``tap_segments.exports.readers``) promises its value types, so only its keys are checked,
  as long as ``post_process`` is the SDK's and the state partition context adds only plain
  values.

Any other record takes the SDK's path, so the output is the same either way.

``FastRecordsMixin`` puts the plan to work in a stream, through the hooks of
``tap_segments.sdk_adapter.AdaptedStream``: it writes RECORDs itself (falling back to the
SDK), skips the SDK's per-record processing when it has nothing to do (no partition context
to add, no child streams) and samples the clock less often in the record counter. For a
record (a dict), everything else of the SDK's record loop still runs: ``post_process``, the
max-record limit, the record counter, state increments and the periodic STATE message.

It also takes ``RecordChunk`` items (rows of a CSV file, many at a time) when the plan
trusts plain rows and the record loop says the SDK would do nothing else to them
(``AdaptedStream.takes_chunks``): the loop then counts, limits and places STATE messages
per chunk exactly as it would per record, and the chunk is written by ``write_record_chunk``.
``accepts_layout`` says whether rows of a given layout may come as chunks.
"""

from __future__ import annotations

import datetime as dt
import sys
import typing as t
from dataclasses import dataclass

import msgspec
from singer_sdk import Stream, metrics
from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.encoding.base import SingerMessageType

from tap_segments.rows import PLAIN_VALUE_TYPES, PlainRow
from tap_segments.sdk_adapter import AdaptedStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.singerlib.encoding.simple import Message

    from tap_segments.exports.chunks import RecordChunk, RecordLayout

#: Value types that conformance leaves untouched under an exclusively boolean property.
BOOLEAN_TYPES: frozenset[type] = frozenset({bool, type(None)})
_all_plain = PLAIN_VALUE_TYPES.issuperset
_now = dt.datetime.now
_UTC = dt.timezone.utc


def _write(data: bytearray, *, flush: bool) -> None:
    """Write one encoded message to the current ``sys.stdout`` (looked up on every call, so
    ``contextlib.redirect_stdout`` works; a text-only stdout such as ``StringIO`` gets text)."""
    out = sys.stdout
    binary = getattr(out, "buffer", None)
    if binary is None:
        out.write(data.decode("utf-8"))
    else:
        binary.write(data)
    if flush:
        out.flush()


class _RecordEnvelope(msgspec.Struct, omit_defaults=True):
    """``RecordMessage.to_dict()`` as a msgspec struct: same keys, same order, no ``version``
    when it is None; cheaper to build and encode than the dict."""

    type: str
    stream: str
    record: dict[str, t.Any]
    version: int | None = None
    time_extracted: dt.datetime | None = None


class TapMessageWriter(MsgSpecWriter):
    """The SDK's msgspec writer; RECORDs stay buffered until the next other message."""

    def __init__(self) -> None:
        super().__init__()
        self._record_buffer = bytearray(256)

    def write_message(self, message: Message) -> None:
        _write(self.format_message(message), flush=message.type != SingerMessageType.RECORD)

    def write_record(
        self, stream: str, record: dict[str, t.Any], version: int | None = None
    ) -> None:
        """Write a RECORD message: the same bytes as ``write_message(RecordMessage(...))``."""
        data = self._record_buffer
        encoder.encode_into(_RecordEnvelope("RECORD", stream, record, version, _now(_UTC)), data)
        data.append(0x0A)  # as serialize_jsonl does
        # ``_write(data, flush=False)``, inlined: this runs once per row.
        out = sys.stdout
        binary = getattr(out, "buffer", None)
        if binary is None:
            out.write(data.decode("utf-8"))
        else:
            binary.write(data)

    def write_record_chunk(self, stream: str, chunk: RecordChunk, version: int | None) -> None:
        """Write the RECORD messages of ``chunk``'s records: the same bytes as
        ``write_record`` of each of them at this moment."""
        if not len(chunk):
            return
        head, joint = self._frame(stream, version, _now(_UTC))
        framed = chunk.body().replace(b"\n", joint)  # the records' lines end with "\n" only
        out = sys.stdout
        binary = getattr(out, "buffer", None)
        body = memoryview(framed)[: len(framed) - len(head)]  # no head after the last line
        if binary is None:
            out.write(head.decode("utf-8") + str(body, "utf-8"))
        else:
            binary.write(head)
            binary.write(body)

    def _frame(self, stream: str, version: int | None, moment: dt.datetime) -> tuple[bytes, bytes]:
        """What comes before a record's JSON in its RECORD line, and what comes between two
        records (the end of one line and the start of the next)."""
        data = encoder.encode(_RecordEnvelope("RECORD", stream, {}, version, moment))
        # ',"' never occurs inside an encoded string (its quote would be escaped).
        cut = data.index(b',"record":{}') + len(b',"record":')
        head, tail = data[:cut], data[cut + 2 :] + b"\n"
        return head, tail + head


@dataclass(frozen=True, slots=True)
class FastRecordPlan:
    """What a stream needs to write its records directly, decided once per schema."""

    writer: TapMessageWriter
    stream_alias: str
    #: Keys that conformance keeps as they are; None: conformance is off (anything passes).
    schema_keys: frozenset[str] | None
    #: Exclusively boolean properties: conformance keeps only their bool and None values.
    boolean_keys: frozenset[str] = frozenset()
    #: A ``PlainRow`` needs only its keys checked (``post_process`` is the SDK's no-op and
    #: no property is exclusively boolean). Needs ``schema_keys``.
    trust_plain_rows: bool = False

    @classmethod
    def for_stream(cls, stream: AdaptedStream, *, batch: bool = False) -> FastRecordPlan | None:
        """The plan, or None when the SDK's record path could change a record. ``batch``:
        for records written into BATCH files, not by the message writer."""
        writer = stream.tap.message_writer
        if not batch and not isinstance(writer, TapMessageWriter):
            return None
        maps = stream.stream_maps
        if len(maps) != 1:
            return None
        only = maps[0]
        if type(only) is not SameRecordTransform or only.flattening_enabled:
            return None
        if not all(stream.mask.values()):  # some property (or the stream) is deselected
            return None
        if stream.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE:
            return cls(writer, only.stream_alias, None)  # accepts() passes every record
        properties = stream.effective_schema.get("properties") or {}
        booleans = frozenset(k for k, schema in properties.items() if _exclusively_boolean(schema))
        return cls(
            writer,
            only.stream_alias,
            frozenset(properties),
            booleans,
            trust_plain_rows=not booleans and type(stream).post_process is Stream.post_process,
        )

    def accepts(self, record: dict[str, t.Any]) -> bool:
        """True when the SDK's path would emit ``record`` unchanged (checks every value)."""
        keys = self.schema_keys
        if keys is None:
            return True
        if not (record.keys() <= keys and _all_plain(map(type, record.values()))):
            return False
        return not self.boolean_keys or all(
            type(record[key]) in BOOLEAN_TYPES for key in self.boolean_keys & record.keys()
        )


def _exclusively_boolean(schema: t.Any) -> bool:
    """As the SDK's conformance sees it: any value of such a property becomes a bool."""
    if not isinstance(schema, dict) or "type" not in schema:
        return False
    kind = schema["type"]
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return kinds in ({"boolean"}, {"boolean", "null"})


class SampledCounter(metrics.Counter):
    """The SDK's record counter, looking at the clock every ``clock_every`` increments.

    It counts every record and logs the same METRIC points; only the check "is it time to
    log?" (a ``time()`` call per record in the SDK) is made once per ``clock_every`` records.
    """

    clock_every = 128

    def __init__(
        self,
        metric: metrics.Metric,
        tags: dict | None = None,
        log_interval: float = metrics.DEFAULT_LOG_INTERVAL,
    ) -> None:
        super().__init__(metric, tags, log_interval=log_interval)
        self._until_clock = self.clock_every

    def increment(self, value: int = 1) -> None:
        self.value += value
        self._until_clock -= 1
        if not self._until_clock or value > 1:  # a chunk of records: look every time
            self._until_clock = self.clock_every
            if self._ready_to_log():
                self._pop()


class _Unplanned:
    """Marks a plan not decided yet (``None`` means: decided, use the SDK's path)."""


_UNPLANNED = _Unplanned()


class FastRecordsMixin(AdaptedStream):
    """Write the records that qualify with ``TapMessageWriter.write_record``.

    Call ``reset_fast_record_plan`` after changing the stream's schema or its stream maps.
    """

    _fast_record_plan: FastRecordPlan | _Unplanned | None = _UNPLANNED
    #: The current state partition context adds no key, or only plain values.
    _plain_partition: bool = True
    record_chunks = True

    def reset_fast_record_plan(self) -> None:
        self._fast_record_plan = _UNPLANNED

    @property
    def fast_record_plan(self) -> FastRecordPlan | None:
        plan = self._fast_record_plan
        if isinstance(plan, _Unplanned):
            plan = self._fast_record_plan = FastRecordPlan.for_stream(self)
        return plan

    def chunks_welcome(self, write_messages: bool) -> bool:
        if write_messages:
            return self.fast_record_plan is not None
        return getattr(self, "batch_chunk_alias", None) is not None

    def batch_chunks_welcome(self, config: t.Any) -> str | None:
        """For BATCH files: the alias chunks go to when the SDK's per-record work would
        change nothing (``FastRecordPlan`` without the message writer)."""
        plan = FastRecordPlan.for_stream(self, batch=True)
        return plan.stream_alias if plan is not None else None

    def accepts_layout(self, layout: RecordLayout) -> bool:
        """Whether rows of ``layout`` (plain values) may come as chunks now: the SDK's record
        path would emit them unchanged (or put them unchanged into BATCH files)."""
        if not (self.takes_chunks and self._plain_partition and layout.is_unique()):
            return False
        if not _all_plain(map(type, layout.parent_values)):
            return False
        batching = getattr(self, "batch_chunk_alias", None) is not None
        plan = FastRecordPlan.for_stream(self, batch=True) if batching else self.fast_record_plan
        if plan is None:
            return False
        if plan.schema_keys is None:
            return True
        return plan.trust_plain_rows and plan.schema_keys.issuperset(layout.names)

    def write_record_chunk(self, chunk: RecordChunk) -> None:
        plan = t.cast(FastRecordPlan, self.fast_record_plan)
        plan.writer.write_record_chunk(plan.stream_alias, chunk, self.stream_version)
        self.state_manager.is_flushed = False

    def write_record(self, record: Record) -> None:
        plan = self.fast_record_plan
        if plan is None:
            super().write_record(record)
            return
        if type(record) is PlainRow and plan.trust_plain_rows and self._plain_partition:
            fast = record.keys() <= t.cast(frozenset, plan.schema_keys)
        else:
            fast = plan.accepts(record)
        if not fast:
            super().write_record(record)
            return
        plan.writer.write_record(plan.stream_alias, record, self.stream_version)
        self.state_manager.is_flushed = False

    def on_state_partition(self, partition: Context | None) -> None:
        """The SDK adds this context's values to records that lack them: note their types."""
        self._plain_partition = not partition or _all_plain(map(type, partition.values()))

    def get_record_counter(
        self,
        *,
        endpoint: str | None = None,
        log_interval: float = metrics.DEFAULT_LOG_INTERVAL,
    ) -> metrics.Counter:
        """The SDK's counter (same metric and tags), looking at the clock less often."""
        counter = super().get_record_counter(endpoint=endpoint, log_interval=log_interval)
        if type(counter) is not metrics.Counter:  # customised elsewhere: keep it
            return counter
        return SampledCounter(counter.metric, counter.tags, log_interval=counter.log_interval)

    def needs_record_processing(self, partition_context: Context | None) -> bool:
        """The SDK's processing, only when it has something to do: a partition context to
        add to the record, or child streams to sync."""
        return bool(partition_context or self.child_streams)
