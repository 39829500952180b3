"""BATCH files written a chunk of records at a time, in the SDK's encodings.

``BatchFiles`` writes the records of one stream (alias) into the files of BATCH messages,
``batch_size`` records a file at most, rotating to a new file when one is full:

- ``jsonl``: one JSON object a line (the records' lines as ``RecordChunk.body`` has them),
  gzip-compressed when ``encoding.compression`` is ``gzip`` (level 1, with ISA-L when
  installed: measured, a fortieth of the work of the SDK's zlib level 9 per record, for
  files about a quarter larger), plain otherwise, as the SDK's targets read them
  (``Sink.process_batch_files``);
- ``parquet``: the SDK's ``parquet`` encoding, row groups of ``ROW_GROUP_ROWS`` records, with
  ``gzip`` compression (level 1) inside the file when asked (snappy otherwise, pyarrow's
  default), dictionary encoding for the parent fields only; needs
  pyarrow (``pip install 'tap-segments[parquet]'``). Columns of the file are strings, the
  parent fields as their values are typed, the row number an int64: what pyarrow infers
  from the same records.

Files go where ``batch_config.storage`` says (``root``, ``prefix``, ``params``): a local
folder (written directly), ``s3://`` (s3fs: ``pip install 'tap-segments[s3]'``) or any
fsspec URL, opened with fsspec as the SDK opens them. A file is named
``<prefix><tap>--<stream>-<uuid>-<n>`` with the SDK's suffixes and URL, and is complete
when its URL is handed back: only then may a BATCH message name it.

Writes to a remote root run in a background thread (the network releases the GIL), so
that uploading overlaps with reading the next rows; at most ``QUEUED_CHUNKS`` chunks wait
for it, so memory stays flat.
"""

from __future__ import annotations

import array
import contextlib
import queue
import threading
import typing as t
import uuid
import zlib
from pathlib import Path
from urllib.parse import unquote, urlparse

from tap_segments.errors import SettingsError

if t.TYPE_CHECKING:
    from tap_segments.exports.chunks import RecordChunk

#: Encodings written here (others fall back to the SDK's batcher).
FORMATS = ("jsonl", "parquet")
GZIP_LEVEL = 1
QUEUED_CHUNKS = 3
#: Records a parquet row group holds (the last one of a file fewer).
ROW_GROUP_ROWS = 50_000


def writes(config: t.Any) -> bool:
    """Whether ``BatchFiles`` writes this ``BatchConfig``'s encoding."""
    return str(config.encoding.format) in FORMATS


def check_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise SettingsError(
            "batch_config.encoding.format is parquet, which needs pyarrow: "
            "pip install 'tap-segments[parquet]'."
        ) from None


class Background:
    """One thread that runs calls in the order given; ``QUEUED_CHUNKS`` may wait."""

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[t.Callable[..., None], tuple] | None] = queue.Queue(
            QUEUED_CHUNKS
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="batch-files", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            if self._error is None:
                try:
                    call[0](*call[1])
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc
            self._calls.task_done()
        self._calls.task_done()

    def call(self, function: t.Callable[..., None], *args: t.Any) -> None:
        self.check()
        self._calls.put((function, args))

    def wait(self) -> None:
        """Until every call given so far has run; raises the first error one raised."""
        self._calls.join()
        self.check()

    def check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def stop(self) -> None:
        self._calls.put(None)
        self._thread.join()


class _File:
    """One batch file being written: on the local disk, or through fsspec."""

    def __init__(self, storage: t.Any, name: str) -> None:
        self._local = local_folder(storage)
        self._opened: t.Any = None
        if self._local is not None:  # no need of fsspec (nor of its import time)
            self._local.mkdir(parents=True, exist_ok=True)
            path = self._local / name
            self.url = path.as_uri()
            self.out: t.Any = open(path, "wb")  # noqa: SIM115 - closed by close()
        else:
            import fsspec  # only for a remote root (see tap_segments.deferred)

            self.url = storage.get_url(name)
            self._opened = fsspec.open(self.url, "wb", **dict(storage.params or {}))
            self.out = self._opened.open()
        self.records = 0

    def close(self) -> None:
        self.out.close()

    def discard(self) -> None:
        """Close, and delete what was written (no BATCH message will name it)."""
        try:
            self.out.close()
        finally:
            if self._opened is None:
                Path(urlparse(self.url).path).unlink(missing_ok=True)
            elif self._opened.fs.exists(self._opened.path):
                self._opened.fs.rm(self._opened.path)


def local_folder(storage: t.Any) -> Path | None:
    """The folder of a local storage root (``file://`` URL or path), as the SDK's
    ``StorageTarget`` resolves it; None for any other."""
    root = str(storage.root)
    parts = urlparse(root)
    if parts.scheme not in ("", "file") or storage.params or parts.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parts.path) if parts.scheme else root).resolve()


def gzip_compressor() -> t.Any:
    """A gzip stream compressor: ISA-L's when installed (``isal``, a dependency on CPython:
    four times less work than zlib's for files a little smaller), else zlib's."""
    deflate: t.Any
    try:
        from isal import isal_zlib as deflate
    except ImportError:
        deflate = zlib
    return deflate.compressobj(GZIP_LEVEL, deflate.DEFLATED, 31)


class _JsonLinesFile(_File):
    def __init__(self, storage: t.Any, name: str, gzip: bool) -> None:
        super().__init__(storage, name)
        self._deflate = gzip_compressor() if gzip else None

    def write_body(self, body: bytes) -> None:
        self.out.write(self._deflate.compress(body) if self._deflate else body)

    def close(self) -> None:
        if self._deflate is not None:
            self.out.write(self._deflate.flush())
        super().close()


class _ParquetFile(_File):
    """Row groups of ``ROW_GROUP_ROWS`` records (tables gathered until then)."""

    def __init__(self, storage: t.Any, name: str, compression: str | None) -> None:
        super().__init__(storage, name)
        self.compression = "gzip" if compression == "gzip" else "snappy"
        self._writer: t.Any = None
        self._tables: list[t.Any] = []
        self._rows = 0
        #: Columns the same in every row (the parent fields): dictionary-encoded. Others
        #: are not tried (pyarrow's default): mostly distinct values, a cost for nothing.
        self.constant_columns: list[str] = []

    def write_table(self, table: t.Any) -> None:
        self._tables.append(table)
        self._rows += table.num_rows
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._tables:
            return
        table = pa.concat_tables(self._tables)
        self._tables, self._rows = [], 0
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self.out,
                table.schema,
                compression=self.compression,
                # gzip at its default level costs ten times level 1's work for files 8% smaller
                compression_level=GZIP_LEVEL if self.compression == "gzip" else None,
                use_dictionary=self.constant_columns,
            )
        self._writer.write_table(table)

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
        super().close()


def arrow_table(chunk: RecordChunk) -> t.Any:
    """The chunk's records as a pyarrow table (typed as pyarrow infers the records)."""
    import pyarrow as pa

    columns = getattr(chunk, "columns", None)
    if columns is None:  # records already encoded: from their dicts, as the SDK does
        return pa.Table.from_pylist(list(chunk.records()))
    names, values = columns()
    count = len(chunk)
    arrays = []
    for column in values:
        if isinstance(column, range):  # the row numbers
            numbers = pa.py_buffer(array.array("q", column))
            arrays.append(pa.Array.from_buffers(pa.int64(), count, [None, numbers]))
        elif isinstance(column, (list, tuple)):  # a column of the file: strings
            arrays.append(pa.array(column, pa.string()))
        else:  # a parent field: the same value in every row
            arrays.append(pa.repeat(next(iter(column), None), count))
    return pa.Table.from_arrays(arrays, names=names)


def parquet_holds(records: list[dict]) -> bool:
    """Whether pyarrow can write these records as parquet: their types agree from record to
    record, and no object is without fields (Parquet has no empty struct)."""
    check_parquet()
    import pyarrow as pa

    try:
        schema = pa.Table.from_pylist(records).schema
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return all(_writable(field.type) for field in schema)


def _writable(kind: t.Any) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(kind):
        return kind.num_fields > 0 and all(
            _writable(kind.field(i).type) for i in range(kind.num_fields)
        )
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _writable(kind.value_type)
    return True


class BatchFiles:
    """The BATCH files of one stream alias (see the module docstring)."""

    def __init__(self, tap_name: str, alias: str, config: t.Any) -> None:
        self.config = config
        self.format = str(config.encoding.format)
        self.compression = config.encoding.compression
        if self.format == "parquet":
            check_parquet()
        self.batch_size = int(config.batch_size)
        self.sync_id = f"{tap_name}--{alias}-{uuid.uuid4()}"
        self.sequence = 0
        self.current: _File | None = None
        # Writes to a remote root wait for the network: they run in a thread of their own.
        # On the local disk they do not (measured: the thread only slowed it down).
        local = local_folder(config.storage) is not None
        self.background = None if local else Background()

    def _run(self, function: t.Callable[..., None], *args: t.Any) -> None:
        if self.background is None:
            function(*args)
        else:
            self.background.call(function, *args)

    def _open(self) -> _File:
        self.sequence += 1
        storage = self.config.storage
        name = f"{storage.prefix or ''}{self.sync_id}-{self.sequence}"
        if self.format == "parquet":
            suffix = ".parquet.gz" if self.compression == "gzip" else ".parquet"
            return _ParquetFile(storage, name + suffix, self.compression)
        gzip = self.compression == "gzip"
        return _JsonLinesFile(storage, name + (".json.gz" if gzip else ".json"), gzip)

    def room(self) -> int:
        """Records the open file (or the next) takes before it is full."""
        return self.batch_size - (self.current.records if self.current is not None else 0)

    def add(self, chunk: RecordChunk) -> tuple[str, int] | None:
        """Write ``chunk``'s records (at most ``room()`` of them); the URL of the file and
        its number of records, when this filled it (it is complete now)."""
        if len(chunk) > self.room():
            raise ValueError(f"{len(chunk)} records for a file with room for {self.room()}")
        if not len(chunk):
            return None
        if self.current is None:
            self.current = self._open()
        self._write(self.current, chunk)
        return self._close() if self.current.records >= self.batch_size else None

    def add_all(self, chunk: RecordChunk) -> t.Iterator[tuple[str, int]]:
        """Write ``chunk``'s records, rotating files; yields each file it fills (URL, number
        of records) before writing on."""
        rest: RecordChunk | None = chunk
        while rest is not None and len(rest):
            room = self.room()
            part, rest = rest.split(room) if room < len(rest) else (rest, None)
            done = self.add(part)
            if done is not None:
                yield done

    def _write(self, file: _File, chunk: RecordChunk) -> None:
        file.records += len(chunk)
        if isinstance(file, _ParquetFile):
            layout = getattr(chunk, "layout", None)
            if layout is not None:
                file.constant_columns = [name for name, _ in layout.parents]
            self._run(file.write_table, arrow_table(chunk))
        else:
            self._run(t.cast(_JsonLinesFile, file).write_body, chunk.body())

    def _close(self) -> tuple[str, int]:
        file, self.current = t.cast(_File, self.current), None
        self._run(file.close)
        if self.background is not None:
            self.background.wait()
        return file.url, file.records

    def finish(self) -> tuple[str, int] | None:
        """Close the open file, if any: its URL and number of records."""
        try:
            return self._close() if self.current is not None else None
        finally:
            if self.background is not None:
                self.background.stop()
                self.background = None

    def discard(self) -> None:
        """On an error: stop, and delete the file being written (no message names it)."""
        file, self.current = self.current, None
        if self.background is not None:
            with contextlib.suppress(BaseException):  # the error that brought us here
                self.background.wait()
            self.background.stop()
            self.background = None
        if file is not None:
            file.discard()
