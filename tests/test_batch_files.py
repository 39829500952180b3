"""BATCH files written a chunk of records at a time (``tap_segments.batchfiles``).

Through the CLI against the simulator: parquet files read back with pyarrow hold exactly
the simulator's rows; plain and gzip JSON lines hold what RECORD messages would; files
rotate every ``batch_size`` records; files go to ``s3://`` through fsspec (moto's server on
127.0.0.1); a run that fails part-way leaves no file that no BATCH message names. In
process: rows of CSV files really take the chunk way, and stream maps really do not.
"""

from __future__ import annotations

import gzip
import io
import json
import typing as t
from contextlib import redirect_stdout
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest
from singer_output import SyncOutput, run_cli
from test_batch import by_key

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig
from simulator.s3 import REGION, MotoS3
from tap_segments.batchfiles import BatchFiles
from tap_segments.exports.chunks import RowsChunk

MEMBERS = "indicative_segment_members"
ROWS = {0: 45, 1: 30, 2: 0, 3: 12}


def indicative_only() -> SimConfig:
    return SimConfig(seed=5, indicative=IndicativeConfig(segments=4, rows_per_segment=ROWS))


def tap_config(sim: Simulator, batch: dict[str, t.Any] | None, **extra: t.Any) -> dict:
    config = {
        **sim.tap_config(),
        "export_poll_interval_seconds": 0.02,
        "export_poll_max_interval_seconds": 0.05,
        **extra,
    }
    config = {k: v for k, v in config.items() if not k.startswith(("artisan", "kiss", "acou"))}
    if batch is not None:
        config["batch_config"] = batch
    return config


def batch(root: str, fmt: str, compression: str | None, batch_size: int | None = None) -> dict:
    config: dict[str, t.Any] = {
        "encoding": {"format": fmt, **({"compression": compression} if compression else {})},
        "storage": {"root": root, "prefix": "seg-"},
    }
    if batch_size is not None:
        config["batch_size"] = batch_size
    return config


def read_file(url: str, encoding: dict, **params: t.Any) -> list[dict]:
    with fsspec.open(url, "rb", **params) as file:
        data = file.read()
    if encoding["format"] == "parquet":
        return pq.read_table(io.BytesIO(data)).to_pylist()
    if encoding.get("compression") == "gzip":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines()]


def files_of(out: SyncOutput, **params: t.Any) -> dict[str, list[list[dict]]]:
    """Per stream, the records of each file its BATCH messages name, file by file."""
    files: dict[str, list[list[dict]]] = {}
    for message in out.messages:
        if message["type"] == "BATCH":
            for url in message["manifest"]:
                rows = read_file(url, message["encoding"], **params)
                files.setdefault(message["stream"], []).append(rows)
    return files


def flat(files: dict[str, list[list[dict]]]) -> dict[str, list[dict]]:
    return {stream: [row for rows in each for row in rows] for stream, each in files.items()}


def test_parquet_files_hold_the_simulators_rows(tmp_path):
    with Simulator(indicative_only()) as sim:
        root = f"file://{tmp_path / 'parquet'}"
        out = run_cli(tmp_path, tap_config(sim, batch(root, "parquet", None)))
        assert out.returncode == 0, out.stderr[-2000:]
        members = flat(files_of(out))[MEMBERS]
        for segment in sim.indicative.segments:
            segment_id = segment["segmentId"]
            got = [m for m in members if m["segmentId"] == segment_id]
            expected = sim.indicative.member_rows(segment_id)
            columns = expected[0].keys() if expected else ()
            assert [{k: m[k] for k in columns} for m in got] == expected
            assert [m["row_number"] for m in got] == list(range(1, len(expected) + 1))
    batches = [m for m in out.messages if m["type"] == "BATCH" and m["stream"] == MEMBERS]
    assert batches and all(m["encoding"]["format"] == "parquet" for m in batches)
    url = batches[0]["manifest"][0]
    schema = pq.read_schema(url.removeprefix("file://"))
    assert str(schema.field("row_number").type) == "int64"
    assert str(schema.field("email").type) == "string"


@pytest.mark.parametrize(
    ("fmt", "compression"), [("jsonl", "gzip"), ("jsonl", "none"), ("parquet", "gzip")]
)
def test_batch_files_hold_what_record_messages_would(tmp_path, fmt, compression):
    with Simulator(indicative_only()) as sim:
        normal = run_cli(tmp_path, tap_config(sim, None))
    with Simulator(indicative_only()) as sim:
        root = f"file://{tmp_path / fmt}"
        out = run_cli(tmp_path, tap_config(sim, batch(root, fmt, compression)))
    assert normal.returncode == 0 and out.returncode == 0, out.stderr[-2000:]
    assert by_key(flat(files_of(out))) == by_key(normal.records)
    assert out.last_state == normal.last_state
    if fmt == "jsonl":
        suffix = ".json.gz" if compression == "gzip" else ".json"
        assert all(p.name.endswith(suffix) for p in (tmp_path / fmt).iterdir())


def test_files_rotate_every_batch_size_records(tmp_path):
    with Simulator(indicative_only()) as sim:
        root = f"file://{tmp_path / 'b'}"
        out = run_cli(tmp_path, tap_config(sim, batch(root, "jsonl", "gzip", batch_size=10)))
    assert out.returncode == 0, out.stderr[-2000:]
    files = files_of(out)[MEMBERS]
    per_export: dict[str, list[int]] = {}
    for rows in files:
        assert len({r["segmentId"] for r in rows}) == 1  # a STATE after each export ends a file
        per_export.setdefault(rows[0]["segmentId"], []).append(len(rows))
    assert sorted(per_export.values()) == [[10, 2], [10, 10, 10], [10, 10, 10, 10, 5]]
    # Every file a message names exists, and no other.
    named = {u for m in out.messages if m["type"] == "BATCH" for u in m["manifest"]}
    assert {f"file://{p}" for p in (tmp_path / "b").iterdir()} == named


def test_batch_files_on_s3(tmp_path):
    with MotoS3() as s3, Simulator(indicative_only()) as sim:
        s3.client().create_bucket(Bucket="tap-batches")
        root = "s3://tap-batches/runs/one"
        config = tap_config(sim, batch(root, "jsonl", "gzip", batch_size=20))
        config["batch_config"]["storage"]["params"] = {"endpoint_url": s3.endpoint_url}
        credentials = {
            "AWS_ACCESS_KEY_ID": "batch-writer-key",
            "AWS_SECRET_ACCESS_KEY": "batch-writer-secret",
            "AWS_DEFAULT_REGION": REGION,
        }
        out = run_cli(tmp_path, config, env=credentials)
        assert out.returncode == 0, out.stderr[-2000:]
        truth = {s: n for s, n in sim.truth().items() if s.startswith("indicative")}
        listed = s3.client().list_objects_v2(Bucket="tap-batches", Prefix="runs/one/")
        keys = {f"s3://tap-batches/{o['Key']}" for o in listed.get("Contents", [])}
        named = {u for m in out.messages if m["type"] == "BATCH" for u in m["manifest"]}
        assert keys == named and all(u.startswith(root + "/seg-") for u in named)
        params = {"endpoint_url": s3.endpoint_url, "key": "reader", "secret": "reader-secret"}
        records = flat(files_of(out, **params))
    assert {s: len(r) for s, r in records.items()} == truth


def test_a_failed_run_leaves_no_file_without_its_message(tmp_path):
    """Downloads that keep breaking fail the run part-way through a file: the file being
    written is deleted, every other file is named by a BATCH message."""
    with Simulator(indicative_only()) as sim:
        sim.faults.add(
            "cut_download", vendor="indicative", path="^/files/", times=99, after_bytes=1500
        )
        root = tmp_path / "b"
        out = run_cli(tmp_path, tap_config(sim, batch(f"file://{root}", "jsonl", "gzip", 10)))
    assert out.returncode != 0
    assert "broke off 3 times" in out.stderr
    named = {u for m in out.messages if m["type"] == "BATCH" for u in m["manifest"]}
    on_disk = {f"file://{p}" for p in root.iterdir()} if root.exists() else set()
    assert on_disk == named


# -- in process ----------------------------------------------------------------------------


@pytest.fixture
def added_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = BatchFiles.add

    def spy(self: BatchFiles, chunk: t.Any) -> tuple[str, int] | None:
        if isinstance(chunk, RowsChunk):
            sizes.append(len(chunk))
        return original(self, chunk)

    monkeypatch.setattr(BatchFiles, "add", spy)
    return sizes


def run_in_process(tmp_path: Path, config: dict) -> list[dict]:
    from tap_segments.tap import TapSegments

    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    with redirect_stdout(stdout):
        TapSegments(config=config).sync_all()
    return [json.loads(line) for line in raw.getvalue().splitlines()]


def test_csv_rows_take_the_chunk_way_and_stream_maps_do_not(tmp_path, added_chunks):
    with Simulator(indicative_only()) as sim:
        root = f"file://{tmp_path / 'b'}"
        run_in_process(tmp_path, tap_config(sim, batch(root, "jsonl", "gzip")))
        assert sum(added_chunks) == sim.truth()[MEMBERS]
        added_chunks.clear()
        maps = {"stream_maps": {MEMBERS: {"email": "md5(email)"}}}
        messages = run_in_process(tmp_path, tap_config(sim, batch(root, "jsonl", "gzip"), **maps))
    assert added_chunks == []
    assert any(m["type"] == "BATCH" and m["stream"] == MEMBERS for m in messages)


def test_records_parquet_cannot_hold_go_to_jsonl_files_named_so(tmp_path):
    """Every vendor at once: Acoustic's jobs carry objects without fields, which Parquet has
    no type for; their files are jsonl.gz, their BATCH messages say so, nothing is lost."""
    from test_batch import sim_config
    from test_batch import tap_config as all_vendors

    with Simulator(sim_config()) as sim:
        normal = run_cli(tmp_path, all_vendors(sim))
    with Simulator(sim_config()) as sim:
        root = f"file://{tmp_path / 'mixed'}"
        out = run_cli(tmp_path, all_vendors(sim, batch_config=batch(root, "parquet", None)))
    assert normal.returncode == 0 and out.returncode == 0, out.stderr[-3000:]
    encodings = {m["stream"]: m["encoding"]["format"] for m in out.messages if m["type"] == "BATCH"}
    assert encodings["acoustic_jobs"] == "jsonl"
    assert encodings[MEMBERS] == "parquet"
    assert "do not fit Parquet's types" in out.stderr
    assert by_key(flat(files_of(out))) == by_key(normal.records)
