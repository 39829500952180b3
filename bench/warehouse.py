"""``bench/run.py --warehouse``: ``meltano run`` into PostgreSQL against ``COPY`` of the file.

Starts a throw-away PostgreSQL (``scripts/start_postgres.sh``, its data in a temporary
folder, destroyed at the end), sets up meltano (``scripts/_venv.sh``,
``meltano install``), then loads the export file the simulator serves, of ``rows`` rows:

- ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the file, through psycopg: the floor of
  what loading it into PostgreSQL can cost;
- ``meltano run --full-refresh tap-segments target-postgres`` with RECORD messages, into the
  schema ``bench_records``, then with BATCH messages (jsonl.gz files), into ``bench_batch``.

Each meltano run is timed as a whole (meltano, the tap and the target starting included)
and must load exactly ``rows`` rows into ``indicative_segment_members``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import typing as t
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEMBERS = "indicative_segment_members"


@dataclass
class Timings:
    server: str = ""
    copy: float = 0.0
    runs: dict[str, float] = field(default_factory=dict)


def start_postgres(folder: Path) -> dict[str, str]:
    """The server's settings (``TARGET_POSTGRES_*``, ``POSTGRES_DSN``, ...)."""
    env = {**os.environ, "PG_DATA_DIR": str(folder)}
    done = subprocess.run(
        ["bash", "scripts/start_postgres.sh"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=env,
    )
    settings = {"PG_DATA_DIR": str(folder)}
    for line in done.stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            settings[name] = shlex.split(value)[0] if value else ""
    return settings


def stop_postgres(settings: dict[str, str]) -> None:
    subprocess.run(
        ["bash", "scripts/start_postgres.sh", "destroy"],
        capture_output=True,
        cwd=REPO,
        env={**os.environ, "PG_DATA_DIR": settings["PG_DATA_DIR"]},
    )


def ensure_meltano() -> None:
    """The project's meltano venv (``scripts/_venv.sh``), set up once, before any timing."""
    subprocess.run(
        ["bash", "-c", ". scripts/_venv.sh && ensure_meltano_venv"],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )


def meltano(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DISABLE_TRACKING": "true",
    }
    return subprocess.run(
        [str(REPO / ".venv-meltano" / "bin" / "meltano"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**base, **(env or {})},
    )


def copy_seconds(url: str, dsn: str, workdir: Path) -> float:
    import psycopg

    path = workdir / "members.csv"
    with urllib.request.urlopen(url) as answer, open(path, "wb") as out:
        while chunk := answer.read(1 << 20):
            out.write(chunk)
    with psycopg.connect(dsn, autocommit=True) as db:
        header = path.open().readline().strip().split(",")
        columns = ", ".join(f'"{c}" text' for c in header)
        db.execute("drop table if exists bench_copy")
        db.execute(f"create table bench_copy ({columns})")
        started = time.perf_counter()
        with (
            db.cursor() as cursor,
            cursor.copy("copy bench_copy from stdin (format csv, header true)") as copy,
            open(path, "rb") as source,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - started
    path.unlink()
    return seconds


def count(dsn: str, schema: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as db:
        row = db.execute(f'select count(*) from "{schema}"."{MEMBERS}"').fetchone()
        return int(row[0]) if row else 0


def measure(simulator: t.Any, url: str, rows: int, workdir: Path) -> Timings:
    # Its own folder: the server's user must reach it (the benchmark's folder is private).
    folder = Path(tempfile.mkdtemp(prefix="tap-segments-bench-pg-"))
    folder.chmod(0o755)
    settings = start_postgres(folder / "postgres")
    try:
        dsn = settings["POSTGRES_DSN"]
        timings = Timings(server=f"127.0.0.1:{settings['TARGET_POSTGRES_PORT']}")
        ensure_meltano()
        installed = meltano("--log-level=warning", "install", "tap-segments", "target-postgres")
        if installed.returncode != 0:
            raise RuntimeError(f"meltano install failed:\n{installed.stderr[-3000:]}")
        timings.copy = copy_seconds(url, dsn, workdir)
        tap = {
            f"TAP_SEGMENTS_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in simulator.tap_config().items()
        }
        tap["TAP_SEGMENTS_EXPORT_POLL_INTERVAL_SECONDS"] = "1"
        target = {k: v for k, v in settings.items() if k.startswith("TARGET_POSTGRES_")}
        batches = workdir / "warehouse-batches"
        runs = {
            "records": ("bench_records", {}),
            # Through its leaves: meltano.yml declares them one by one, and then meltano
            # ignores TAP_SEGMENTS_BATCH_CONFIG as a whole.
            "BATCH": (
                "bench_batch",
                {
                    "TAP_SEGMENTS_BATCH_CONFIG_ENCODING_FORMAT": "jsonl",
                    "TAP_SEGMENTS_BATCH_CONFIG_ENCODING_COMPRESSION": "gzip",
                    "TAP_SEGMENTS_BATCH_CONFIG_STORAGE_ROOT": f"file://{batches}",
                    "TAP_SEGMENTS_BATCH_CONFIG_BATCH_SIZE": "100000",
                },
            ),
        }
        for label, (schema, extra) in runs.items():
            env = {**tap, **target, **extra, "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema}
            started = time.perf_counter()
            done = meltano(
                "run",
                "--state-id-suffix",
                f"bench-{schema}",
                "--full-refresh",
                "tap-segments",
                "target-postgres",
                env=env,
            )
            timings.runs[label] = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"meltano run ({label}) failed:\n{done.stderr[-3000:]}")
            if extra and not any(batches.glob("*.json.gz")):
                raise RuntimeError(f"meltano run ({label}) wrote no BATCH file")
            loaded = count(dsn, schema)
            if loaded != rows:
                raise RuntimeError(f"meltano run ({label}) loaded {loaded} rows, not {rows}")
        return timings
    finally:
        stop_postgres(settings)
        shutil.rmtree(folder, ignore_errors=True)
