"""Export files read in worker processes (``tap_segments.exports.workers``).

The pool on its own (forked workers reading stub files): the records a worker encodes are
the ones the main process would encode, headers come before rows, an error comes after the
rows before it, a file that is not CSV is left to the main process, a task not started is
taken back, a discarded task's output is deleted, BATCH files rotate in the worker.
Through the CLI against the simulator: several exports at once are read by workers and
the output holds exactly what a run without workers holds, each export's records together
and before the STATE that records it; in BATCH mode too; a failing run leaves no spool.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import typing as t
from pathlib import Path

import pytest
from singer_output import SyncOutput, run_cli

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig
from tap_segments.exports import readers
from tap_segments.exports.chunks import RecordLayout, RowsChunk
from tap_segments.exports.download import ExportFile
from tap_segments.exports.readers import decode_items
from tap_segments.exports.workers import ReadPool, Ticket, read_chunk

MEMBERS = "indicative_segment_members"
LOGGER = logging.getLogger("test-workers")


class StubOpener:
    """Files from memory, by URL (the workers inherit it when they are forked)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def open(self, file: ExportFile) -> t.BinaryIO:
        return io.BytesIO(self.files[file.url])

    def in_worker(self) -> None:
        pass


def csv_file(rows: int, start: int = 0) -> bytes:
    lines = ["id,email,note"]
    lines += [f'{i},u{i}@x.io,"n, {i}\nmore"' for i in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


FILES = {
    "mem://a.csv": csv_file(2500),
    "mem://b.csv": csv_file(700, start=2500),
    "mem://bad.csv": csv_file(300) + b"1,2\n" + csv_file(5)[14:],
    "mem://rows.json": b'[{"id": "1"}]',
}


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> t.Iterator[ReadPool]:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 400)
    pool = ReadPool(1, {"mem": StubOpener(FILES)}, LOGGER)  # type: ignore[dict-item]
    yield pool
    pool.close()


def files(*urls: str) -> list[ExportFile]:
    return [ExportFile(url=url, name=f"file {url}") for url in urls]


def submit(pool: ReadPool, *urls: str, **extra: t.Any) -> Ticket:
    return pool.submit(
        "mem", files(*urls), parents=(("job", "j1"),), number_field="row_number", **extra
    )


def inline_records(*urls: str) -> bytes:
    """What the main process encodes for these files (one numbering across them)."""
    body, number = b"", 0
    for url in urls:
        for chunk in decode_items(io.BytesIO(FILES[url]), url, "csv"):
            layout = RecordLayout(tuple(chunk.header), (("job", "j1"),), "row_number")
            body += RowsChunk(layout, chunk.rows, number + 1).body()
            number += len(chunk)
    return body


def test_a_worker_encodes_the_records_the_main_process_would(pool):
    ticket = submit(pool, "mem://a.csv", "mem://b.csv")
    reports = list(ticket.reports())
    kinds = [r[0] for r in reports]
    assert kinds[0] == "header" and kinds[-1] == "file"
    assert kinds.index("header") < kinds.index("chunk")
    assert [r[1:] for r in reports if r[0] == "file"] == [(0, 2500), (1, 3200)]
    body = b"".join(read_chunk(r).body() for r in reports if r[0] == "chunk")
    assert body == inline_records("mem://a.csv", "mem://b.csv")
    assert os.listdir(pool.spool) == []  # taken out of the spool as read


def test_an_error_comes_after_the_rows_before_it(pool):
    reports = list(submit(pool, "mem://bad.csv").reports())
    assert reports[-1][0] == "error"
    assert "line 602: 2 values for the 3 columns" in str(reports[-1][1])
    rows = sum(r[2] for r in reports if r[0] == "chunk")
    assert rows == 300


def test_a_file_that_is_not_csv_is_left_to_the_main_process(pool):
    reports = list(submit(pool, "mem://b.csv", "mem://rows.json").reports())
    assert reports[-1] == ("inline", 1, 700)


def test_a_task_not_started_is_taken_back(pool):
    busy = submit(pool, "mem://a.csv")
    waiting = submit(pool, "mem://b.csv")
    assert pool.steal(waiting)
    assert list(busy.reports())  # the worker finishes its own task
    assert not pool.steal(busy)


def test_a_discarded_task_leaves_nothing_behind(pool):
    ticket = submit(pool, "mem://a.csv")
    pool.discard(ticket)
    assert [r[0] for r in ticket.reports()] == []
    assert os.listdir(pool.spool) == []


def test_a_worker_writes_batch_files_rotated(pool, tmp_path):
    from tap_segments.sdk_adapter import BatchConfig

    config = BatchConfig.from_dict(
        {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path}", "prefix": "w-"},
            "batch_size": 1000,
        }
    )
    ticket = submit(pool, "mem://a.csv", batch=config, tap_name="tap", alias="s")
    batches = [r for r in ticket.reports() if r[0] == "batch"]
    assert [r[2] for r in batches] == [1000, 1000, 500]
    lines = b"".join(
        gzip.decompress(Path(r[1].removeprefix("file://")).read_bytes()) for r in batches
    )
    assert lines == inline_records("mem://a.csv")


# -- through the CLI -------------------------------------------------------------------------

# Large enough that reading one export outlasts handing the next to a worker.
ROWS = {0: 40_000, 1: 26_000, 2: 0, 3: 31_000, 4: 12_000}


def simulator() -> Simulator:
    return Simulator(
        SimConfig(seed=8, indicative=IndicativeConfig(segments=5, rows_per_segment=ROWS))
    )


def tap_config(sim: Simulator, **extra: t.Any) -> dict:
    config = {
        **sim.tap_config(),
        "export_poll_interval_seconds": 0.02,
        "export_poll_max_interval_seconds": 0.05,
        **extra,
    }
    return {k: v for k, v in config.items() if not k.startswith(("artisan", "kiss", "acou"))}


def by_export(out: SyncOutput) -> dict[str, list[dict]]:
    exports: dict[str, list[dict]] = {}
    for record in out.records.get(MEMBERS, []):
        exports.setdefault(record["segmentId"], []).append(record)
    return exports


def check_order(out: SyncOutput) -> None:
    """Each export's records are together, and before the STATE that records the export."""
    seen: list[str] = []
    last: dict[str, int] = {}
    for index, message in enumerate(out.messages):
        if message["type"] == "RECORD" and message["stream"] == MEMBERS:
            segment = message["record"]["segmentId"]
            if not seen or seen[-1] != segment:
                assert segment not in seen, f"records of {segment} are not together"
                seen.append(segment)
            last[segment] = index
        elif message["type"] == "STATE":
            bookmarks = message["value"]["bookmarks"].get("indicative_segment_exports", {})
            for segment in bookmarks.get("segments_exported", {}):
                assert last.get(segment, -1) < index
    out.assert_columns_announced()


def without_time(exports: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {
        k: [{c: v for c, v in r.items() if c != "exportId"} for r in rows]
        for k, rows in exports.items()
    }


def test_exports_read_by_workers_give_what_one_process_gives(tmp_path):
    with simulator() as sim:
        alone = run_cli(tmp_path, tap_config(sim, max_concurrent_exports=1))
    with simulator() as sim:
        spool = tmp_path / "tmp"
        spool.mkdir()
        out = run_cli(tmp_path, tap_config(sim), env={"TMPDIR": str(spool)})
        truth = sim.truth()[MEMBERS]
    assert alone.returncode == 0 and out.returncode == 0, out.stderr[-3000:]
    assert "worker process(es) too" not in alone.stderr
    assert "read by a worker process meanwhile" in out.stderr
    assert sum(len(r) for r in by_export(out).values()) == truth
    assert without_time(by_export(out)) == without_time(by_export(alone))
    check_order(out)
    assert out.last_state is not None and alone.last_state is not None
    assert (
        out.last_state["bookmarks"]["indicative_segment_exports"]["segments_exported"]
        == (alone.last_state["bookmarks"]["indicative_segment_exports"]["segments_exported"])
    )
    assert list(spool.iterdir()) == []  # the spool is gone


def test_batch_files_written_by_workers_hold_every_record(tmp_path):
    folder = tmp_path / "batches"
    batch = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{folder}"},
        "batch_size": 1000,
    }
    with simulator() as sim:
        out = run_cli(tmp_path, tap_config(sim, batch_config=batch))
        truth = sim.truth()[MEMBERS]
    assert out.returncode == 0, out.stderr[-3000:]
    assert "read by a worker process meanwhile" in out.stderr
    members: list[dict] = []
    for message in out.messages:
        if message["type"] == "BATCH" and message["stream"] == MEMBERS:
            for url in message["manifest"]:
                data = gzip.decompress(Path(url.removeprefix("file://")).read_bytes())
                rows = [json.loads(line) for line in data.splitlines()]
                assert len(rows) <= 1000
                members += rows
    assert len(members) == truth
    keys = {(m["segmentId"], m["row_number"]) for m in members}
    assert len(keys) == truth
    named = {u for m in out.messages if m["type"] == "BATCH" for u in m["manifest"]}
    assert {f"file://{p}" for p in folder.iterdir()} == named


def test_a_failing_run_with_workers_leaves_no_spool_and_no_stray_file(tmp_path):
    folder = tmp_path / "batches"
    batch = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{folder}"},
        "batch_size": 500,
    }
    spool = tmp_path / "tmp"
    spool.mkdir()
    with simulator() as sim:
        sim.faults.add(
            "cut_download", vendor="indicative", path="^/files/", times=99, after_bytes=40_000
        )
        out = run_cli(tmp_path, tap_config(sim, batch_config=batch), env={"TMPDIR": str(spool)})
    assert out.returncode != 0
    assert "broke off 3 times" in out.stderr
    assert list(spool.iterdir()) == []
    named = {u for m in out.messages if m["type"] == "BATCH" for u in m["manifest"]}
    on_disk = {f"file://{p}" for p in folder.iterdir()} if folder.exists() else set()
    assert on_disk == named


def test_workers_end_when_the_main_process_is_killed(tmp_path):
    """kill -9 of the tap while a worker reads: the worker does not outlive it."""
    import signal
    import subprocess
    import time

    from singer_output import cli_command

    rows = {0: 200_000, 1: 200_000, 2: 200_000}
    config = SimConfig(seed=8, indicative=IndicativeConfig(segments=3, rows_per_segment=rows))
    spool = tmp_path / "tmp"
    spool.mkdir()
    with Simulator(config) as sim:
        command, env = cli_command(tmp_path, tap_config(sim), None, env={"TMPDIR": str(spool)})
        tap = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert tap.stdout is not None
        for index, _ in enumerate(tap.stdout):
            if index > 5_000:
                break
        children = Path(f"/proc/{tap.pid}/task/{tap.pid}/children").read_text().split()
        os.kill(tap.pid, signal.SIGKILL)
        tap.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{c}").exists() for c in children):
            time.sleep(0.1)
    assert children, "no worker was started"
    assert not [c for c in children if Path(f"/proc/{c}").exists()]
    assert list(spool.iterdir()) == []  # the worker deleted the spool the tap left
