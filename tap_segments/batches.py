"""BATCH messages that hold exactly what RECORD messages would, and never trail a STATE.

With ``batch_config`` set, the SDK (0.54) syncs a stream through ``Stream._sync_batches``:
it collects the records the stream produces into files of ``batch_size`` records and sends
a BATCH message per file. Three things go wrong with that for this tap:

- the files hold the records as the stream produced them: stream maps (a hashed email
  column), property deselection and type conformance, which RECORD messages get, are not
  applied; and a BATCH message is sent for every stream map with the same files, even for a
  stream a map removed (``"stream": null``), which got no SCHEMA;
- the tap writes STATE messages in the middle of a stream (an export was triggered; every
  row of an export, of an Acoustic file, of a Kissmetrics window was emitted). Under the
  SDK's batching, such a STATE reaches the target while the records it accounts for still
  wait in memory for their file: a run killed then loses them for good, since the next run
  starts from that STATE;
- a child stream's STATE carries the parent's state too, so the same holds across streams.

``BatchesMixin`` (a base of every stream of the tap) replaces the SDK's batching with
``BatchWriter``:

- each record goes through the SDK's own per-record work of RECORD messages
  (``record_messages``: deselected properties dropped, types conformed, every stream map
  applied), and the result is kept per stream alias (a removed stream keeps nothing and
  gets no BATCH message);
- ``batch_size`` records make one file per alias (written by the SDK's batch encoder for
  ``batch_config.encoding.format``) and one BATCH message per alias, then a STATE;
- before any STATE message, every writer open in the tap writes what it holds first, so a
  STATE always comes after the BATCH messages of every record it accounts for.

Rows of CSV files take a faster way when the SDK's per-record work would leave them as
they are (``FastRecordsMixin.accepts_layout``: the only stream map is the default one, no
property deselected, conformance a no-op) and the encoding is ``jsonl`` or ``parquet``:
they come from the record loop as ``RecordChunk`` items and go straight into files
written a chunk at a time (``tap_segments.batchfiles.BatchFiles``), never held in memory;
a file is complete, and gets its BATCH message, every ``batch_size`` records and before
every STATE, as above. Records that take the SDK's way are written first when a chunk
follows them, so files keep the records' order. Files a worker process wrote
(``tap_segments.exports.workers``) come as ``WrittenBatch`` items and get their BATCH
message in their turn, the same way.
"""

from __future__ import annotations

import dataclasses
import typing as t
import weakref

from singer_sdk import typing as th
from singer_sdk.batch import Batcher
from singer_sdk.singerlib.json import serialize_json

from tap_segments import batchfiles
from tap_segments.batchfiles import BatchFiles
from tap_segments.exports.chunks import RecordChunk, WrittenBatch
from tap_segments.sdk_adapter import (
    AdaptedStream,
    BaseBatchFileEncoding,
    BatchConfig,
    SDKBatchMessage,
)

if t.TYPE_CHECKING:
    from singer_sdk import metrics
    from singer_sdk.helpers.types import Context

#: ``batch_config.batch_size``: the SDK reads it (``BatchConfig.batch_size``) but does not
#: declare it in its schema; declared here, it is documented like every other setting.
BATCH_SIZE_SETTING: dict[str, t.Any] = th.Property(
    "batch_size",
    th.IntegerType(minimum=1),
    title="Batch Size",
    description=(
        "Records a BATCH file holds at most: files rotate every this many records "
        "(default 10,000, the SDK's)."
    ),
).to_dict()

#: Stream aliases whose records were written as jsonl.gz instead of parquet (warned once).
_WARNED: set[str] = set()

#: Writers with records not yet in a file, per tap (a child stream's writer is open inside
#: its parent's).
_OPEN_WRITERS: weakref.WeakKeyDictionary[t.Any, list[BatchWriter]] = weakref.WeakKeyDictionary()


class RecordList(RecordChunk):
    """Records the SDK's way made (stream maps applied, types conformed), for ``BatchFiles``:
    JSON lines as the SDK's batcher encodes them, columns as pyarrow infers them."""

    def __init__(self, records: list[dict]) -> None:
        self.items = records
        self.count = len(records)

    def body(self) -> bytes:
        return "".join([serialize_json(record) + "\n" for record in self.items]).encode()

    def records(self) -> t.Iterator[dict]:
        return iter(self.items)

    def split(self, count: int) -> tuple[RecordList, RecordList]:
        return RecordList(self.items[:count]), RecordList(self.items[count:])


class BatchWriter:
    """Records of one stream waiting for their file, per stream alias; chunks of records
    being written into their file."""

    def __init__(self, stream: BatchesMixin, config: BatchConfig, counter: metrics.Counter) -> None:
        self.stream = stream
        self.config = config
        self.counter = counter
        self.pending: dict[str, list[dict]] = {}
        self.held = 0
        self.files: dict[str, BatchFiles] = {}

    def add(self, record: dict) -> bool:
        """Keep ``record`` as each stream map makes it; True when that filled a batch and
        it was written."""
        self.close_files()  # records after chunks: the chunks' file ends here
        for message in self.stream.record_messages(record):
            self.pending.setdefault(message.stream, []).append(message.record)
        self.held += 1
        if self.held < self.config.batch_size:
            return False
        self.write()
        return True

    def add_chunk(self, chunk: RecordChunk, alias: str) -> None:
        """Write a chunk's records into the alias's open file (the stream's only alias);
        each file it fills gets its BATCH message, then a STATE if the state changed."""
        self.write_records()  # records before the chunk go first
        rest: RecordChunk | None = chunk
        while rest is not None and len(rest):
            files = self.files.get(alias)  # a STATE closes them: look again each time
            if files is None:
                files = self.files[alias] = BatchFiles(self.stream.tap_name, alias, self.config)
            room = files.room()
            part, rest = rest.split(room) if room < len(rest) else (rest, None)
            done = files.add(part)
            if done is not None:
                self.message(alias, [done[0]])
                self.stream.write_state_if_changed()

    def add_written(self, batch: WrittenBatch, alias: str) -> None:
        """A file a worker process wrote: its BATCH message, after what is held here."""
        self.write()
        self.message(alias, [batch.url])
        self.stream.write_state_if_changed()

    def write(self) -> None:
        """Write what is held: one file and one BATCH message per stream alias."""
        self.write_records()
        self.close_files()

    def write_records(self) -> None:
        pending, self.pending, self.held = self.pending, {}, 0
        for alias, records in pending.items():
            config = self.config_for(alias, records)
            if batchfiles.writes(config):
                files = BatchFiles(self.stream.tap_name, alias, config)
                done = list(files.add_all(RecordList(records)))
                last = files.finish()
                manifest = [url for url, _ in [*done, *([last] if last else [])]]
            else:
                batcher = Batcher(self.stream.tap_name, alias, config)
                manifest = [url for urls in batcher.get_batches(iter(records)) for url in urls]
            self.message(alias, manifest, config.encoding)

    def config_for(self, alias: str, records: list[dict]) -> BatchConfig:
        """The batch config for these records: jsonl.gz instead of parquet when Parquet's
        types cannot hold them (an object without fields, a field whose values differ in
        type). Every BATCH message names its files' encoding, so targets read both."""
        if str(self.config.encoding.format) != "parquet" or batchfiles.parquet_holds(records):
            return self.config
        if alias not in _WARNED:
            _WARNED.add(alias)
            self.stream.logger.warning(
                "%s: these records do not fit Parquet's types (an object without fields, or "
                "a field whose values differ in type); they go into jsonl.gz BATCH files "
                "instead, and their BATCH messages say so.",
                alias,
            )
        jsonl = BaseBatchFileEncoding(format="jsonl", compression="gzip")
        return dataclasses.replace(self.config, encoding=jsonl)

    def close_files(self) -> None:
        for alias, files in self.files.items():
            done = files.finish()
            if done is not None:
                self.message(alias, [done[0]])
        self.files = {}

    def discard(self) -> None:
        """On an error: drop what is held (no STATE accounts for it)."""
        self.pending, self.held = {}, 0
        files, self.files = self.files, {}
        for each in files.values():
            each.discard()

    def message(
        self, alias: str, manifest: list[str], encoding: BaseBatchFileEncoding | None = None
    ) -> None:
        encoding = encoding or self.config.encoding
        self.stream.tap.write_message(
            SDKBatchMessage(stream=alias, encoding=encoding, manifest=manifest)
        )
        self.counter.increment()
        self.stream.state_manager.is_flushed = False


def write_open_batches(tap: t.Any) -> None:
    """Write the records every open writer of ``tap`` holds (before a STATE is written)."""
    for writer in list(_OPEN_WRITERS.get(tap, ())):
        writer.write()


class BatchesMixin(AdaptedStream):
    """A stream whose BATCH messages come from ``BatchWriter`` (see the module docstring)."""

    #: The stream alias chunks of records are written to (set while a fast plan holds).
    batch_chunk_alias: str | None = None

    def batch_chunks_welcome(self, config: BatchConfig) -> str | None:
        """The alias that chunks of this stream's records may be written to as they are,
        or None (the SDK's per-record way)."""
        return None

    def sync_batches(self, batch_config: BatchConfig, context: Context | None) -> None:
        with self.get_batch_counter() as counter:
            writer = BatchWriter(self, batch_config, counter)
            open_writers = _OPEN_WRITERS.setdefault(self.tap, [])
            open_writers.append(writer)
            fast = batchfiles.writes(batch_config)
            self.batch_chunk_alias = self.batch_chunks_welcome(batch_config) if fast else None
            try:
                for item in self.records_without_messages(context):
                    if isinstance(item, WrittenBatch):
                        writer.add_written(item, t.cast(str, self.batch_chunk_alias))
                    elif isinstance(item, RecordChunk):
                        writer.add_chunk(item, t.cast(str, self.batch_chunk_alias))
                    elif writer.add(item):
                        self.write_state_if_changed()
                writer.write()
            except BaseException:
                writer.discard()  # no STATE accounts for the records it held
                raise
            finally:
                self.batch_chunk_alias = None
                open_writers.remove(writer)
            self.write_state_if_changed()

    def before_state_message(self) -> None:
        write_open_batches(self.tap)
