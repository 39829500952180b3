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
"""

from __future__ import annotations

import typing as t
import weakref

from singer_sdk.batch import Batcher

from tap_segments.sdk_adapter import AdaptedStream, BatchConfig, SDKBatchMessage

if t.TYPE_CHECKING:
    from singer_sdk import metrics
    from singer_sdk.helpers.types import Context

#: Writers with records not yet in a file, per tap (a child stream's writer is open inside
#: its parent's).
_OPEN_WRITERS: weakref.WeakKeyDictionary[t.Any, list[BatchWriter]] = weakref.WeakKeyDictionary()


class BatchWriter:
    """Records of one stream waiting for their file, per stream alias."""

    def __init__(
        self, stream: AdaptedStream, config: BatchConfig, counter: metrics.Counter
    ) -> None:
        self.stream = stream
        self.config = config
        self.counter = counter
        self.pending: dict[str, list[dict]] = {}
        self.held = 0

    def add(self, record: dict) -> bool:
        """Keep ``record`` as each stream map makes it; True when that filled a batch and
        it was written."""
        for message in self.stream.record_messages(record):
            self.pending.setdefault(message.stream, []).append(message.record)
        self.held += 1
        if self.held < self.config.batch_size:
            return False
        self.write()
        return True

    def write(self) -> None:
        """Write what is held: one file and one BATCH message per stream alias."""
        pending, self.pending, self.held = self.pending, {}, 0
        for alias, records in pending.items():
            batcher = Batcher(self.stream.tap_name, alias, self.config)
            manifest = [url for urls in batcher.get_batches(iter(records)) for url in urls]
            encoding = self.config.encoding
            message = SDKBatchMessage(stream=alias, encoding=encoding, manifest=manifest)
            self.stream.tap.write_message(message)
            self.counter.increment()
        if pending:
            self.stream.state_manager.is_flushed = False


def write_open_batches(tap: t.Any) -> None:
    """Write the records every open writer of ``tap`` holds (before a STATE is written)."""
    for writer in list(_OPEN_WRITERS.get(tap, ())):
        writer.write()


class BatchesMixin(AdaptedStream):
    """A stream whose BATCH messages come from ``BatchWriter`` (see the module docstring)."""

    def sync_batches(self, batch_config: BatchConfig, context: Context | None) -> None:
        with self.get_batch_counter() as counter:
            writer = BatchWriter(self, batch_config, counter)
            open_writers = _OPEN_WRITERS.setdefault(self.tap, [])
            open_writers.append(writer)
            try:
                for record in self.records_without_messages(context):
                    if writer.add(record):
                        self.write_state_if_changed()
                writer.write()
            finally:
                # On an error, records still held are dropped: no STATE accounts for them.
                open_writers.remove(writer)
            self.write_state_if_changed()

    def before_state_message(self) -> None:
        write_open_batches(self.tap)
