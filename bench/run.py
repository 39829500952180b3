"""Benchmark: the tap against a plain-Python floor, in one run, as ratios.

Run from the repository root:

    python bench/run.py                         # 300,000 rows: records, BATCH, start-up
    python bench/run.py --rows 3000000          # one size
    python bench/run.py --mode all              # 300k and 3M rows, parallel, start-up, overlap
    python bench/run.py --mode parallel         # two exports at once against one
    python bench/run.py --mode concurrency      # 8 overlapping 4-second exports against one
    python bench/run.py --warehouse             # also meltano run into PostgreSQL against COPY
    python bench/run.py --mode warehouse        # only that
    python bench/run.py --baseline              # also the tap on the SDK's own record path
    python bench/run.py --gzip                  # the export file served gzip-compressed

Throughput serves one Indicative segment export of ``--rows`` rows from the simulator, then,
``--repeat`` times, interleaved:

- the floor (``bench/floor.py``): a plain Python program that downloads that file, parses it
  with ``csv`` and writes ``json.dumps`` of each row to /dev/null;
- the tap, end to end (``python -m tap_segments --config ...``, stdout to /dev/null): it
  lists the segment, triggers the export, polls it, downloads the file and emits the rows,
  as RECORD messages, then as BATCH messages with jsonl.gz files, then with parquet files
  (snappy, pyarrow's default; ``batch_config.batch_size`` ``--batch-size``, files in a
  temporary folder).

Each is measured over the whole process (interpreter start, imports, listing, triggering,
polling, streaming) and over the streaming alone: for the floor, from opening the URL to
the last row written; for the tap, the SDK's own ``sync_duration`` METRIC of the
``indicative_segment_members`` stream. The tap's record count comes from its
``record_count`` METRIC and must equal ``--rows``; in BATCH mode the files are read back and
counted too. Peak RSS is each tap process's own (``wait4``; worker processes included). The
ratios are floor time / tap time of the medians, so above 1.0 the tap is faster.

Parallel runs the tap against two segments of ``--parallel-rows`` rows each, then one, and
prints the ratio of their rows per second over the whole process (2 = twice the rows in the
same time). Start-up is the median wall time of ``--about`` (and of ``import singer_sdk``
alone, for comparison). Concurrency runs 8 segments whose exports each take
``--export-seconds`` of server time against 1 such segment.

``--warehouse`` also loads ``--warehouse-rows`` rows into PostgreSQL (``scripts/
start_postgres.sh``, in a temporary folder) with ``meltano run tap-segments target-postgres``,
with RECORD messages and with BATCH (jsonl.gz) messages, and with PostgreSQL's ``COPY`` of the
same CSV file, and prints how many times longer each meltano run takes than COPY.

The simulator runs in this process. Its export files are generated once before anything is
measured (``simulator.data.member_csv_chunks``: commas, quotes, line breaks and empty cells
included) and then served from disk, so that the simulator, which shares the machine, costs
little while the tap runs; the "simulator alone" line checks that: it downloads the file
and discards it.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib.metadata as md
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from simulator import VENDOR_APPS, SimConfig, Simulator, data  # noqa: E402
from simulator.indicative import IndicativeConfig  # noqa: E402

MEMBERS = "indicative_segment_members"
GOALS = {"record": 1.0, "batch": 1.0, "parallel": 1.6, "rss": 80.0}


# -- the simulator ------------------------------------------------------------------------


def serve_files_from(folder: Path) -> None:
    """Generate each export file once into ``folder`` and serve it from there after."""
    generate = data.member_csv_chunks
    if getattr(generate, "cached", False):
        return

    def cached(seed: int, scope: str, rows: int) -> t.Iterator[bytes]:
        path = folder / f"members-{seed}-{scope}-{rows}.csv"
        if not path.exists():
            partial = path.with_suffix(".part")
            with open(partial, "wb") as out:
                out.writelines(generate(seed, scope, rows))
            partial.rename(path)
        with open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                yield chunk

    cached.cached = True  # type: ignore[attr-defined]
    data.member_csv_chunks = cached  # type: ignore[assignment]


def start_simulator(indicative: IndicativeConfig) -> Simulator:
    """A simulator that plays Indicative only (so the tap syncs Indicative only), its files
    generated before it answers."""
    saved = dict(VENDOR_APPS)
    VENDOR_APPS.clear()
    VENDOR_APPS["indicative"] = saved["indicative"]
    try:
        simulator = Simulator(SimConfig(seed=1, indicative=indicative))
    finally:
        VENDOR_APPS.clear()
        VENDOR_APPS.update(saved)
    app = simulator.indicative
    for index, segment in enumerate(app.segments):
        for _ in data.member_csv_chunks(app.seed, segment["segmentId"], app.rows_of(index)):
            pass
    return simulator.start()


# -- running things --------------------------------------------------------------------


@dataclass
class TapRun:
    wall: float
    streaming: float
    records: int
    peak_rss_mb: float
    log: str = ""


#: The tap as the SDK would run it: its default writer, hence none of the fast path.
SDK_PATH_TAP = (
    "from singer_sdk.io_base import SingerWriter\n"
    "from tap_segments.tap import TapSegments\n"
    "TapSegments.message_writer_class = SingerWriter\n"
    "TapSegments.cli()\n"
)


#: Starts a command from a small process and writes its peak RSS (KiB) to a file. A child
#: forked from this (large) benchmark process would count this process's memory as its own
#: peak: Linux records the memory a process had before ``exec`` in its ``ru_maxrss``.
LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_tap(
    config: dict[str, t.Any],
    workdir: Path,
    *,
    sdk_path: bool = False,
    stdout: Path | None = None,
) -> TapRun:
    """``python -m tap_segments`` with stdout to /dev/null; metrics read from its stderr."""
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    log_path = workdir / "tap.log"
    rss_path = workdir / "tap.rss"
    program = ["-c", SDK_PATH_TAP] if sdk_path else ["-m", "tap_segments"]
    command = [sys.executable, *program, "--config", str(config_path)]
    launcher = [sys.executable, "-S", "-c", LAUNCHER, str(rss_path)]
    started = time.perf_counter()
    with open(log_path, "wb") as log, open(stdout or os.devnull, "wb") as out:
        process = subprocess.run([*launcher, *command], stdout=out, stderr=log, cwd=REPO)
    wall = time.perf_counter() - started
    log_text = log_path.read_text(errors="replace")
    if process.returncode != 0:
        sys.exit(f"the tap failed (exit {process.returncode}):\n{log_text[-3000:]}")
    peak_rss_mb = int(rss_path.read_text()) / 1024
    streaming = records = 0
    for line in log_text.splitlines():
        if "METRIC: " not in line:
            continue
        point = json.loads(line.split("METRIC: ", 1)[1])
        if point.get("tags", {}).get("stream") != MEMBERS:
            continue
        if point["metric"] == "sync_duration":
            streaming += point["value"]
        elif point["metric"] == "record_count":
            records += point["value"]
    return TapRun(wall, streaming, int(records), peak_rss_mb, log_text)


def run_floor(url: str) -> tuple[float, float, int]:
    """The floor program; returns (wall, streaming seconds, rows)."""
    started = time.perf_counter()
    launcher = [sys.executable, "-S", "-c", LAUNCHER, os.devnull]  # as the tap is started
    done = subprocess.run(
        [*launcher, sys.executable, str(REPO / "bench" / "floor.py"), url],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    result = json.loads(done.stdout)
    return wall, result["seconds"], result["rows"]


def export_file_url(simulator: Simulator) -> str:
    """Trigger an export through Indicative's API, as a client would, and return its file."""
    settings = simulator.tap_config()
    base = settings["indicative_base_url"]
    secret = f"{settings['indicative_api_key']}:{settings['indicative_access_token']}"
    headers = {
        "Authorization": "Basic " + base64.b64encode(secret.encode()).decode(),
        "Content-Type": "application/json",
    }

    def call(method: str, path: str, body: t.Any = None) -> t.Any:
        payload = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, payload, headers, method=method)
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    segment = call("GET", "/service/v1/segments/list")[0]
    export = call("POST", "/service/v1/segments/export/", {"segmentId": segment["segmentId"]})
    for _ in range(100):
        status = call("GET", f"/service/v1/segments/export/{export['exportId']}")
        if status["status"] == "COMPLETE":
            return str(status["filename"])
        time.sleep(0.05)
    raise RuntimeError("the simulator's export did not complete")


def serve_alone(url: str) -> float:
    """Seconds to download the file and discard it: the simulator's own ceiling."""
    started = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        while response.read(1 << 20):
            pass
    return time.perf_counter() - started


def batch_config(folder: Path, fmt: str, batch_size: int) -> dict[str, t.Any]:
    """jsonl with gzip; parquet with its default compression (snappy)."""
    encoding = {"format": "jsonl", "compression": "gzip"} if fmt == "jsonl" else {"format": fmt}
    return {"encoding": encoding, "storage": {"root": f"file://{folder}"}, "batch_size": batch_size}


COUNT_PARQUET_ROWS = (
    "import sys, pyarrow.parquet as pq; print(pq.read_metadata(sys.argv[1]).num_rows)"
)


def batch_rows(folder: Path, fmt: str) -> int:
    """Rows in the members stream's batch files (then deletes the folder)."""
    rows = 0
    for path in folder.iterdir():
        if MEMBERS not in path.name:
            continue
        if fmt == "parquet":  # counted by another process: pyarrow stays out of this one
            done = subprocess.run(
                [sys.executable, "-c", COUNT_PARQUET_ROWS, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows += int(done.stdout)
        else:
            with gzip.open(path) as lines:
                rows += sum(1 for _ in lines)
    shutil.rmtree(folder)
    return rows


# -- results ---------------------------------------------------------------------------


@dataclass
class Results:
    """Every ratio of the run, for the summary."""

    lines: list[tuple[str, str, bool | None]] = field(default_factory=list)

    def add(self, label: str, value: str, ok: bool | None = None) -> None:
        self.lines.append((label, value, ok))

    def ok(self) -> bool:
        return all(ok is not False for _, _, ok in self.lines)

    def print(self) -> None:
        print("\nsummary (ratios: the tap's speed over the floor's, same run; goals in brackets)")
        width = max(len(label) for label, _, _ in self.lines)
        for label, value, ok in self.lines:
            mark = "" if ok is None else ("  ok" if ok else "  MISSED")
            print(f"  {label:<{width}}  {value}{mark}")


def median(values: t.Iterable[float]) -> float:
    return statistics.median(list(values))


# -- modes -------------------------------------------------------------------------------


def throughput(args: argparse.Namespace, rows: int, workdir: Path, results: Results) -> None:
    simulator = start_simulator(
        IndicativeConfig(segments=1, rows_per_segment=rows, polls_to_complete=1, gzip=args.gzip)
    )
    runs: dict[str, list[TapRun]] = {"record": [], "jsonl.gz": [], "parquet": []}
    floors: list[tuple[float, float]] = []
    sdk: TapRun | None = None
    try:
        url = export_file_url(simulator)
        config = {
            **simulator.tap_config(),
            "export_poll_interval_seconds": 0.1,
            "export_poll_max_interval_seconds": 0.5,
        }
        alone = min(serve_alone(url) for _ in range(2))
        for _ in range(args.repeat):
            floor_wall, floor_streaming, floor_rows = run_floor(url)
            if floor_rows != rows:
                sys.exit(f"the floor read {floor_rows} rows, expected {rows}")
            floors.append((floor_wall, floor_streaming))
            for kind in runs:
                folder = workdir / "batches"
                extra = {}
                if kind != "record":
                    fmt = kind.split(".")[0]
                    extra["batch_config"] = batch_config(folder, fmt, args.batch_size)
                run = run_tap({**config, **extra}, workdir)
                written = run.records if kind == "record" else batch_rows(folder, fmt)
                if run.records != rows or written != rows:
                    sys.exit(f"the tap ({kind}) emitted {written} rows, expected {rows}")
                runs[kind].append(run)
        sdk = run_tap(config, workdir, sdk_path=True) if args.baseline else None
    finally:
        simulator.stop()

    floor_stream = median(s for _, s in floors)
    floor_wall = median(w for w, _ in floors)
    kind = "gzip CSV" if args.gzip else "CSV"
    print(f"\nthroughput: {rows:,} rows ({kind}, 5 columns -> 8-field records),", end=" ")
    print(f"median of {args.repeat}")
    print(
        f"  {'':34s} {'rows/s':>10s} {'streaming s':>12s} {'process s':>10s}"
        f" {'x floor':>8s} {'peak RSS':>9s}"
    )
    print(f"  {'simulator alone (download, discard)':34s} {rows / alone:>10,.0f} {alone:>12.2f}")
    print(
        f"  {'floor (urllib + csv + json.dumps)':34s} {rows / floor_stream:>10,.0f}"
        f" {floor_stream:>12.2f} {floor_wall:>10.2f} {1:>8.2f}"
    )
    labels = {
        "record": "tap, RECORD messages",
        "jsonl.gz": "tap, BATCH jsonl.gz",
        "parquet": "tap, BATCH parquet (snappy)",
    }
    summary = {}
    for key, each in runs.items():
        stream, wall = median(r.streaming for r in each), median(r.wall for r in each)
        peak = max(r.peak_rss_mb for r in each)
        summary[key] = (floor_stream / stream, floor_wall / wall, peak)
        print(
            f"  {labels[key]:34s} {rows / stream:>10,.0f} {stream:>12.2f} {wall:>10.2f}"
            f" {floor_wall / wall:>8.2f} {peak:>7.1f} MB"
        )
    if sdk is not None:
        print(
            f"  {'tap, SDK record path (one run)':34s} {rows / sdk.streaming:>10,.0f}"
            f" {sdk.streaming:>12.2f} {sdk.wall:>10.2f} {floor_wall / sdk.wall:>8.2f}"
            f" {sdk.peak_rss_mb:>7.1f} MB"
        )
    size = f"{rows:,} rows"
    record_stream, record_wall, record_rss = summary["record"]
    results.add(
        f"record path vs floor, whole process, {size}",
        f"{record_wall:5.2f}x  [>= {GOALS['record']}]",
        record_wall >= GOALS["record"],
    )
    results.add(f"record path vs floor, streaming, {size}", f"{record_stream:5.2f}x")
    for key in ("jsonl.gz", "parquet"):
        _, wall_ratio, _ = summary[key]
        results.add(
            f"BATCH {key} vs floor, whole process, {size}",
            f"{wall_ratio:5.2f}x  [>= {GOALS['batch']}]",
            wall_ratio >= GOALS["batch"],
        )
    results.add(
        f"peak RSS, record path, {size}",
        f"{record_rss:5.1f} MB  [< {GOALS['rss']:.0f} MB]",
        record_rss < GOALS["rss"],
    )
    results.add(
        f"peak RSS, BATCH jsonl.gz / parquet, {size}",
        f"{summary['jsonl.gz'][2]:5.1f} / {summary['parquet'][2]:.1f} MB",
    )


def parallel(args: argparse.Namespace, workdir: Path, results: Results) -> None:
    """Two exports at once against one: rows per second over the whole process."""
    rows = args.parallel_rows

    def run(segments: int) -> TapRun:
        simulator = start_simulator(
            IndicativeConfig(segments=segments, rows_per_segment=rows, polls_to_complete=1)
        )
        try:
            config = {
                **simulator.tap_config(),
                "export_poll_interval_seconds": 0.1,
                "export_poll_max_interval_seconds": 0.5,
            }
            result = run_tap(config, workdir)
        finally:
            simulator.stop()
        if result.records != segments * rows:
            sys.exit(f"the tap emitted {result.records} records, expected {segments * rows}")
        return result

    ones, twos = [], []
    for _ in range(args.repeat):
        ones.append(run(1))
        twos.append(run(2))
    one, two = median(r.wall for r in ones), median(r.wall for r in twos)
    used = sum("read by a worker process meanwhile" in r.log for r in twos)
    ratio = (2 * rows / two) / (rows / one)
    print(f"\nparallel: exports of {rows:,} rows each, whole process, median of {args.repeat}")
    print(f"  1 export     {one:6.2f} s   {rows / one:>10,.0f} rows/s")
    print(f"  2 exports    {two:6.2f} s   {2 * rows / two:>10,.0f} rows/s", end="   ")
    print(f"(a worker read one export in {used} of {len(twos)} runs)")
    results.add(
        f"two exports at once vs one, rows/s, {rows:,} rows each",
        f"{ratio:5.2f}x  [>= {GOALS['parallel']}]",
        ratio >= GOALS["parallel"],
    )


def startup(workdir: Path, results: Results) -> None:
    def wall(*command: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, cwd=REPO)
            times.append(time.perf_counter() - started)
        return median(times)

    python = wall(sys.executable, "-c", "pass")
    sdk = wall(sys.executable, "-c", "import singer_sdk")
    about = wall(sys.executable, "-m", "tap_segments", "--about")
    print("\nstart-up: median of 5")
    print(f"  python -c pass               {python:6.2f} s")
    print(f"  python -c 'import singer_sdk' {sdk:5.2f} s")
    print(f"  python -m tap_segments --about {about:5.2f} s")
    results.add(
        "start-up, tap-segments --about", f"{about:5.2f} s  (import singer_sdk: {sdk:.2f} s)"
    )


def concurrency(args: argparse.Namespace, workdir: Path, results: Results) -> None:
    def wall_for(segments: int) -> float:
        simulator = start_simulator(
            IndicativeConfig(
                segments=segments,
                rows_per_segment=args.export_rows,
                export_seconds=args.export_seconds,
            )
        )
        try:
            config = {**simulator.tap_config(), "max_concurrent_exports": args.exports}
            run = run_tap(config, workdir)
        finally:
            simulator.stop()
        if run.records != segments * args.export_rows:
            sys.exit(
                f"the tap emitted {run.records} records, expected {segments * args.export_rows}"
            )
        return run.wall

    one = wall_for(1)
    many = wall_for(args.exports)
    ratio = many / one
    print(
        f"\nconcurrency: exports of {args.export_seconds:g} s server time each,"
        f" {args.export_rows:,} rows each, max_concurrent_exports={args.exports}"
    )
    print(f"  1 export     {one:6.2f} s wall")
    print(f"  {args.exports} exports    {many:6.2f} s wall")
    results.add(
        f"{args.exports} overlapping exports vs 1, wall time",
        f"{ratio:5.2f}x  [<= 1.5]",
        ratio <= 1.5,
    )


def warehouse(args: argparse.Namespace, workdir: Path, results: Results) -> None:
    """meltano run into target-postgres (records, BATCH) against COPY of the same file."""
    from bench import warehouse as wh

    rows = args.warehouse_rows
    simulator = start_simulator(
        IndicativeConfig(segments=1, rows_per_segment=rows, polls_to_complete=1)
    )
    try:
        url = export_file_url(simulator)
        timings = wh.measure(simulator, url, rows, workdir)
    finally:
        simulator.stop()
    print(f"\nwarehouse: {rows:,} rows into PostgreSQL ({timings.server})")
    print(f"  PostgreSQL COPY of the CSV file              {timings.copy:7.2f} s")
    for label, seconds in timings.runs.items():
        print(
            f"  meltano run tap-segments target-postgres, {label:8s} {seconds:7.2f} s"
            f"   {seconds / timings.copy:6.1f}x COPY"
        )
    for label, seconds in timings.runs.items():
        results.add(
            f"meltano run into PostgreSQL, {label}, vs COPY",
            f"{seconds / timings.copy:5.1f}x longer",
        )


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model or platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, singer-sdk {md.version('singer-sdk')}, "
        f"msgspec {md.version('msgspec')}, pyarrow {md.version('pyarrow')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode",
        choices=("throughput", "parallel", "concurrency", "warehouse", "all"),
        default="throughput",
    )
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the export file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--gzip", action="store_true", help="serve the export file gzipped")
    parser.add_argument("--batch-size", type=int, default=100_000, help="records a BATCH file")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also run the tap once with the SDK's default writer and record path",
    )
    parser.add_argument("--parallel-rows", type=int, default=1_000_000)
    parser.add_argument("--exports", type=int, default=8, help="concurrency mode: exports")
    parser.add_argument("--export-seconds", type=float, default=4.0)
    parser.add_argument("--export-rows", type=int, default=2000, help="concurrency mode: rows each")
    parser.add_argument("--warehouse", action="store_true", help="also meltano run into PostgreSQL")
    parser.add_argument("--warehouse-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"tap-segments benchmark on {machine()}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results = Results()
    with tempfile.TemporaryDirectory(prefix="tap-segments-bench-") as tmp:
        workdir = Path(tmp)
        files = workdir / "files"
        files.mkdir()
        serve_files_from(files)
        if args.mode in ("throughput", "all"):
            startup(workdir, results)
        if args.mode == "throughput":
            throughput(args, args.rows, workdir, results)
        if args.mode == "all":
            for rows in (300_000, 3_000_000):
                throughput(args, rows, workdir, results)
        if args.mode in ("parallel", "all"):
            parallel(args, workdir, results)
        if args.mode in ("concurrency", "all"):
            concurrency(args, workdir, results)
        if args.warehouse or args.mode == "warehouse":
            warehouse(args, workdir, results)
    results.print()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    sys.exit(0 if results.ok() else 1)


if __name__ == "__main__":
    main()
