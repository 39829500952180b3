"""Benchmark: the tap's row throughput against a plain-Python floor, its memory, and overlap.

Run from the repository root:

    python bench/run.py                         # throughput, 300,000 rows
    python bench/run.py --rows 3000000          # throughput, 3,000,000 rows
    python bench/run.py --mode concurrency      # 8 overlapping 4-second exports vs one
    python bench/run.py --mode all              # 300k, 3M and concurrency
    python bench/run.py --baseline              # also the tap on the SDK's own record path
    python bench/run.py --gzip                  # the export file served gzip-compressed

Throughput mode serves one Indicative segment export of ``--rows`` rows from the simulator
(rows generated as a stream, never held in memory), then, ``--repeat`` times, interleaved:

- the floor (``bench/floor.py``): a plain Python program that downloads that file, parses it
  with ``csv`` and writes ``json.dumps`` of each row to /dev/null;
- the tap, end to end (``python -m tap_segments --config ...``, stdout to /dev/null): it
  lists the segment, triggers the export, polls it, downloads the file and emits the rows.

Both rates are rows / seconds of streaming the file: for the floor, from opening the URL to
the last row written; for the tap, the SDK's own ``sync_duration`` METRIC of the
``indicative_segment_members`` stream (status request, download, parse, RECORD messages).
The wall time of each whole process (interpreter start, imports, the export's trigger and
poll) is printed too, with its own ratio. The tap's record count comes from its
``record_count`` METRIC and must equal ``--rows``. Peak RSS is the tap process's own
(``wait4``). The medians of the repeats are printed.

Concurrency mode runs the tap against 8 segments whose exports each take ``--export-seconds``
of server time (``max_concurrent_exports=8``), then against 1 such segment, and prints the
ratio of the two wall times.

The simulator runs in this process and generates its export files at a few million rows
per second (``simulator.data.member_csv_chunks``: commas, quotes, line breaks and empty
cells included), so that the simulator, which shares the machine, never limits what is
measured. The "simulator alone" line checks that: it downloads the file and discards it.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata as md
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from simulator import VENDOR_APPS, SimConfig, Simulator  # noqa: E402
from simulator.indicative import IndicativeConfig  # noqa: E402

MEMBERS = "indicative_segment_members"


# -- the simulator ------------------------------------------------------------------------


def start_simulator(indicative: IndicativeConfig) -> Simulator:
    """A simulator that plays Indicative only (so the tap syncs Indicative only)."""
    saved = dict(VENDOR_APPS)
    VENDOR_APPS.clear()
    VENDOR_APPS["indicative"] = saved["indicative"]
    try:
        simulator = Simulator(SimConfig(seed=1, indicative=indicative))
    finally:
        VENDOR_APPS.clear()
        VENDOR_APPS.update(saved)
    return simulator.start()


# -- running things --------------------------------------------------------------------


@dataclass
class TapRun:
    wall: float
    streaming: float
    records: int
    peak_rss_mb: float


#: The tap as the SDK would run it: its default writer, hence none of the fast path.
SDK_PATH_TAP = (
    "from singer_sdk.io_base import SingerWriter\n"
    "from tap_segments.tap import TapSegments\n"
    "TapSegments.message_writer_class = SingerWriter\n"
    "TapSegments.cli()\n"
)


def run_tap(config: dict[str, t.Any], workdir: Path, *, sdk_path: bool = False) -> TapRun:
    """``python -m tap_segments`` with stdout to /dev/null; metrics read from its stderr."""
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    log_path = workdir / "tap.log"
    program = ["-c", SDK_PATH_TAP] if sdk_path else ["-m", "tap_segments"]
    command = [sys.executable, *program, "--config", str(config_path)]
    started = time.perf_counter()
    with open(log_path, "wb") as log, open(os.devnull, "wb") as devnull:
        process = subprocess.Popen(command, stdout=devnull, stderr=log, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    log_text = log_path.read_text(errors="replace")
    if process.returncode != 0:
        sys.exit(f"the tap failed (exit {process.returncode}):\n{log_text[-3000:]}")
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
    return TapRun(wall, streaming, int(records), usage.ru_maxrss / 1024)


def run_floor(url: str) -> tuple[float, float, int]:
    """The floor program; returns (wall, streaming seconds, rows)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "floor.py"), url],
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


# -- modes -------------------------------------------------------------------------------


def throughput(
    rows: int, repeat: int, workdir: Path, *, gzip: bool = False, baseline: bool = False
) -> bool:
    simulator = start_simulator(
        IndicativeConfig(segments=1, rows_per_segment=rows, polls_to_complete=1, gzip=gzip)
    )
    sdk: TapRun | None = None
    try:
        url = export_file_url(simulator)
        config = {
            **simulator.tap_config(),
            "export_poll_interval_seconds": 0.1,
            "export_poll_max_interval_seconds": 0.5,
        }
        alone = serve_alone(url)
        floors, taps = [], []
        for _ in range(repeat):
            floor_wall, floor_streaming, floor_rows = run_floor(url)
            if floor_rows != rows:
                sys.exit(f"the floor read {floor_rows} rows, expected {rows}")
            floors.append((floor_wall, floor_streaming))
            tap = run_tap(config, workdir)
            if tap.records != rows:
                sys.exit(f"the tap emitted {tap.records} records, expected {rows}")
            taps.append(tap)
        sdk = run_tap(config, workdir, sdk_path=True) if baseline else None
    finally:
        simulator.stop()
    if sdk is not None and sdk.records != rows:
        sys.exit(f"the SDK-path tap emitted {sdk.records} records, expected {rows}")

    floor_stream = statistics.median(s for _, s in floors)
    floor_wall = statistics.median(w for w, _ in floors)
    tap_stream = statistics.median(r.streaming for r in taps)
    tap_wall = statistics.median(r.wall for r in taps)
    peak = max(r.peak_rss_mb for r in taps)
    ratio = floor_stream / tap_stream
    wall_ratio = floor_wall / tap_wall
    kind = "gzip CSV" if gzip else "CSV"
    print(f"\nthroughput: {rows:,} rows ({kind}, 5 columns -> 8-field records), median of {repeat}")
    print(f"  {'':38s} {'rows/s':>10s} {'streaming s':>12s} {'process s':>10s}")
    print(f"  {'simulator alone (download, discard)':38s} {rows / alone:>10,.0f} {alone:>12.2f}")
    print(
        f"  {'floor (urllib + csv + json.dumps)':38s} {rows / floor_stream:>10,.0f}"
        f" {floor_stream:>12.2f} {floor_wall:>10.2f}"
    )
    print(
        f"  {'tap (end to end, stdout /dev/null)':38s} {rows / tap_stream:>10,.0f}"
        f" {tap_stream:>12.2f} {tap_wall:>10.2f}"
    )
    if sdk is not None:
        print(
            f"  {'tap, SDK record path (default writer)':38s} {rows / sdk.streaming:>10,.0f}"
            f" {sdk.streaming:>12.2f} {sdk.wall:>10.2f}   (one run, for comparison)"
        )
    ok_ratio = ratio >= 0.6
    ok_rss = peak < 120
    print(f"  ratio tap/floor (streaming)    {ratio:6.2f}   goal >= 0.6   {_ok(ok_ratio)}")
    print(
        f"  ratio tap/floor (whole process){wall_ratio:6.2f}   (the tap spends"
        f" {tap_wall - tap_stream:.2f} s starting, listing and triggering before it streams)"
    )
    print(f"  tap peak RSS                   {peak:6.1f} MB  goal < 120 MB {_ok(ok_rss)}")
    return ok_ratio and ok_rss


def concurrency(exports: int, export_seconds: float, rows: int, workdir: Path) -> bool:
    def wall_for(segments: int) -> float:
        simulator = start_simulator(
            IndicativeConfig(
                segments=segments, rows_per_segment=rows, export_seconds=export_seconds
            )
        )
        try:
            config = {**simulator.tap_config(), "max_concurrent_exports": exports}
            run = run_tap(config, workdir)
        finally:
            simulator.stop()
        if run.records != segments * rows:
            sys.exit(f"the tap emitted {run.records} records, expected {segments * rows}")
        return run.wall

    one = wall_for(1)
    many = wall_for(exports)
    ratio = many / one
    ok = ratio <= 1.5
    print(
        f"\nconcurrency: exports of {export_seconds:g} s server time each, {rows:,} rows each,"
        f" max_concurrent_exports={exports}, default poll settings"
    )
    print(f"  1 export                       {one:6.2f} s wall")
    print(f"  {exports} exports                      {many:6.2f} s wall")
    print(f"  ratio {exports} / 1                    {ratio:6.2f}   goal <= 1.5   {_ok(ok)}")
    return ok


def _ok(ok: bool) -> str:
    return "ok" if ok else "MISSED"


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
        f"msgspec {md.version('msgspec')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode", choices=("throughput", "concurrency", "all"), default="throughput"
    )
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the export file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of floor and tap (median)")
    parser.add_argument("--gzip", action="store_true", help="serve the export file gzipped")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also run the tap once with the SDK's default writer and record path",
    )
    parser.add_argument("--exports", type=int, default=8, help="concurrency mode: exports")
    parser.add_argument("--export-seconds", type=float, default=4.0)
    parser.add_argument("--export-rows", type=int, default=2000, help="concurrency mode: rows each")
    args = parser.parse_args()
    print(f"tap-segments benchmark on {machine()}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="tap-segments-bench-") as tmp:
        workdir = Path(tmp)
        if args.mode == "throughput":
            ok &= throughput(
                args.rows, args.repeat, workdir, gzip=args.gzip, baseline=args.baseline
            )
        if args.mode == "all":
            for rows in (300_000, 3_000_000):
                ok &= throughput(rows, args.repeat, workdir, gzip=args.gzip, baseline=args.baseline)
        if args.mode in ("concurrency", "all"):
            ok &= concurrency(args.exports, args.export_seconds, args.export_rows, workdir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
