"""Every use of the Singer SDK's private API, in one module.

The tap needs a few things the SDK (0.54) has no public hook for: writing a STATE message
at a moment of its choosing (an export was triggered), a faster record path, BATCH files
that hold what RECORD messages would, columns added while a stream runs, a bookmark
that moves per window instead of per record, and a record loop that takes many records
at a time (``RecordChunk``). ``AdaptedStream`` overrides the SDK's private
methods once and hands each to a public method of ours; the functions below wrap the
private calls. Nothing else in the tap touches a name of the SDK that starts with ``_``.

``PRIVATE_METHODS`` and ``PRIVATE_ATTRIBUTES`` list what is used; ``tests/test_sdk_contract.py``
checks them against the installed SDK, so an upgrade that changes one fails loudly there
rather than quietly somewhere in a sync.
"""

from __future__ import annotations

import contextlib
import copy
import typing as t

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import InvalidStreamSortException
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, SDKBatchMessage
from singer_sdk.plugin_base import _ConfigInput as ConfigInput

from tap_segments.errors import Terminated
from tap_segments.exports.chunks import RecordChunk
from tap_segments.http import current_stream

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.singerlib import RecordMessage

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "PRIVATE_METHODS",
    "AdaptedStream",
    "AdaptedTap",
    "BaseBatchFileEncoding",
    "BatchConfig",
    "ConfigInput",
    "SDKBatchMessage",
]

#: SDK ``Stream`` methods overridden or called here, with the parameters used.
PRIVATE_METHODS: dict[str, tuple[str, ...]] = {
    "_write_record_message": ("self", "record"),
    "_process_record": ("self", "record", "child_context", "partition_context"),
    "_get_state_partition_context": ("self", "context"),
    "_sync_records": ("self", "context", "write_messages"),
    "_sync_batches": ("self", "batch_config", "context"),
    "_write_state_message": ("self",),
    "_write_schema_message": ("self",),
    "_generate_record_messages": ("self", "record"),
    "_increment_stream_state": ("self", "latest_record", "context"),
    "_check_max_record_limit": ("self", "current_record_index"),
    "_write_starting_replication_value": ("self", "context"),
    "_finalize_state": ("self", "state"),
}
#: SDK ``Stream`` instance attributes read or written here.
PRIVATE_ATTRIBUTES: tuple[str, ...] = ("_tap", "_input_schema", "_stream_maps", "_stream_version")
#: SDK ``Tap`` methods and attributes overridden or used here.
PRIVATE_TAP_METHODS: dict[str, tuple[str, ...]] = {
    "_handle_termination": ("self", "signum", "frame"),
}
PRIVATE_TAP_ATTRIBUTES: tuple[str, ...] = ("_state_writer",)


class AdaptedTap(Tap):
    """A ``Tap`` that ends a run on SIGTERM/SIGINT with an error, not ``exit(0)``.

    The SDK's handler writes the state and exits 0, so a scheduler would record a cut-short
    run as a success. Here the signal raises ``Terminated`` in the main thread: the running
    export stream records the jobs whose trigger was already sent, the state is written,
    and the CLI exits non-zero with one line.
    """

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    def write_state_now(self) -> None:
        """Write the whole tap state as a STATE message now."""
        self._state_writer.write_state(self.state)


class AdaptedStream(Stream):
    """A ``Stream`` whose private SDK hooks call the public methods below."""

    # -- hooks for subclasses (defaults: the SDK's own behaviour) --------------------------

    def write_record(self, record: Record) -> None:
        """Write one record's RECORD message(s)."""
        Stream._write_record_message(self, record)

    def needs_record_processing(self, partition_context: Context | None) -> bool:
        """False lets a record skip the SDK's per-record processing, which only adds the
        partition context's keys to it and syncs child streams."""
        return True

    def on_state_partition(self, partition: Context | None) -> None:
        """Told the state partition context each time the SDK works it out."""

    def sync_batches(self, batch_config: BatchConfig, context: Context | None) -> None:
        """Sync the stream as BATCH messages."""
        Stream._sync_batches(self, batch_config, context=context)

    def before_state_message(self) -> None:
        """Called before each STATE message this stream writes."""

    #: False switches off the SDK's per-record bookmark (the stream moves its own).
    per_record_bookmarks: t.ClassVar[bool] = True

    #: True: ``get_records`` may yield ``RecordChunk`` items while ``takes_chunks`` is set
    #: (the record loop below, not the SDK's, then runs the stream).
    record_chunks: t.ClassVar[bool] = False
    #: Set by the record loop while it takes chunks (read it in ``get_records``).
    takes_chunks: bool = False

    def chunks_welcome(self, write_messages: bool) -> bool:
        """Whether the stream can write (or, for BATCH, take) its records a chunk at a time.
        Asked only when the SDK's per-record work outside writing would change nothing."""
        return False

    def write_record_chunk(self, chunk: RecordChunk) -> None:
        """Write the RECORD messages of a chunk."""
        raise NotImplementedError

    # -- the SDK's private methods, routed to the hooks ------------------------------------

    def _write_record_message(self, record: Record) -> None:
        self.write_record(record)

    def _process_record(
        self,
        record: Record,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        if self.needs_record_processing(partition_context):
            super()._process_record(record, child_context, partition_context)

    def _get_state_partition_context(self, context: Context | None) -> Context | None:
        partition = super()._get_state_partition_context(context)
        self.on_state_partition(partition)
        return partition

    def _sync_batches(self, batch_config: BatchConfig, context: Context | None = None) -> None:
        self.sync_batches(batch_config, context)

    def _write_state_message(self) -> None:
        if not self.state_manager.is_flushed:
            self.before_state_message()
        super()._write_state_message()

    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        if self.per_record_bookmarks:
            super()._increment_stream_state(latest_record, context=context)

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[t.Any, t.Any, t.Any]:  # records (dicts) and RecordChunks
        """The SDK's, with this stream's name known to the HTTP metrics while it runs."""
        token = current_stream.set(self.name)
        try:
            if self.record_chunks:
                yield from self._sync_records_and_chunks(context, write_messages)
            else:
                yield from super()._sync_records(context, write_messages=write_messages)
        finally:
            with contextlib.suppress(ValueError):  # finalised from another context
                current_stream.reset(token)

    def skips_nothing_per_record(self, partition: Context | None) -> bool:
        """True when, besides writing, the SDK's loop would do nothing to a record: the
        SDK's ``post_process``, nothing to process (no partition context to add, no child
        stream), no per-record bookmark."""
        return (
            type(self).post_process is Stream.post_process
            and not self.needs_record_processing(partition)
            and not (self.per_record_bookmarks and self.replication_method == "INCREMENTAL")
        )

    def _sync_records_and_chunks(
        self, context: Context | None, write_messages: bool
    ) -> t.Generator[dict | RecordChunk, t.Any, None]:
        """The SDK's record loop (``Stream._sync_records`` of singer-sdk 0.54), which also
        takes ``RecordChunk`` items (``_sync_chunk``). Records (dicts) get exactly the SDK's
        treatment; chunks are offered only when that treatment is writing alone."""
        counter = self.get_record_counter()
        timer = self.get_sync_timer()
        index = 0
        selected = self.selected
        with counter, timer:
            for element in ([context] if context is not None else self.partitions) or [{}]:
                counter.with_context(element)
                timer.with_context(element)
                current = element or None
                partition = self._get_state_partition_context(current)
                self._write_starting_replication_value(current)
                child_context = None if current is None else copy.copy(current)
                self.takes_chunks = (
                    selected
                    and self.skips_nothing_per_record(partition)
                    and self.chunks_welcome(write_messages)
                )
                try:
                    for position, item in enumerate(self.get_records(current)):
                        if isinstance(item, RecordChunk):
                            index = yield from self._sync_chunk(
                                item, index, counter, write_messages
                            )
                            continue
                        self._check_max_record_limit(current_record_index=index)
                        record = self.post_process(t.cast(dict, item), current)
                        if record is None:
                            continue
                        try:
                            self._process_record(
                                record, child_context=child_context, partition_context=partition
                            )
                        except InvalidStreamSortException as ex:  # pragma: no cover - as the SDK
                            self.state_manager.log_sort_error(
                                ex=ex,
                                record_count=index + 1,
                                partition_record_count=position + 1,
                                current_context=current,
                            )
                            raise
                        if selected:
                            if write_messages:
                                self._write_record_message(record)
                            self._increment_stream_state(record, context=current)
                            if (index + 1) % self.STATE_MSG_FREQUENCY == 0 and write_messages:
                                self._write_state_message()
                            counter.increment()
                            yield record
                        index += 1
                finally:
                    self.takes_chunks = False
                if current == partition:
                    self._finalize_state(self.get_context_state(current))
        if not context:
            self._finalize_state(self.stream_state)
        if write_messages:
            self._write_state_message()

    def _sync_chunk(
        self, chunk: RecordChunk, index: int, counter: t.Any, write_messages: bool
    ) -> t.Generator[RecordChunk, t.Any, int]:
        """A chunk's records, as the SDK's loop would treat them one by one: the record
        limit checked before each record, a STATE after every ``STATE_MSG_FREQUENCY``-th,
        every record counted. The chunk is cut where the limit or a STATE falls. Yields the
        parts; returns the index of the next record."""
        limit = self.ABORT_AT_RECORD_COUNT
        every = self.STATE_MSG_FREQUENCY
        rest: RecordChunk | None = chunk
        while rest is not None and len(rest):
            self._check_max_record_limit(current_record_index=index)
            size = len(rest)
            if limit is not None:
                size = min(size, limit - index)
            if write_messages:
                size = min(size, every - index % every)
            part, rest = rest.split(size) if size < len(rest) else (rest, None)
            if write_messages:
                self.write_record_chunk(part)
            index += size
            if write_messages and index % every == 0:
                self._write_state_message()
            counter.increment(size)
            yield part
        return index

    # -- private calls, wrapped ------------------------------------------------------------

    def write_state_now(self) -> None:
        """Write a STATE message now (the SDK otherwise writes one every 10,000 records)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    def write_state_if_changed(self) -> None:
        """Write a STATE message if anything changed since the last one."""
        self._write_state_message()

    def records_without_messages(self, context: Context | None) -> t.Iterator[dict | RecordChunk]:
        """The SDK's record loop (state, counters, limits) without writing RECORDs."""
        return self._sync_records(context, write_messages=False)

    def record_messages(self, record: Record) -> t.Iterator[RecordMessage]:
        """The RECORD messages the SDK would write for ``record`` (maps, selection, types)."""
        return self._generate_record_messages(record)

    def write_schema_now(self) -> None:
        self._write_schema_message()

    def schemas_to_extend(self) -> list[dict]:
        """This stream's schema, and the SDK's input schema when it is a separate copy."""
        schemas = [self.schema]
        if self._input_schema is not None and self._input_schema is not self.schema:
            schemas.append(self._input_schema)
        return schemas

    def reset_stream_maps(self) -> None:
        """Let the SDK build this stream's maps again (after its schema changed)."""
        self._stream_maps = []

    @property
    def tap(self) -> t.Any:
        """The tap this stream belongs to."""
        return self._tap

    @property
    def stream_version(self) -> int | None:
        return self._stream_version
