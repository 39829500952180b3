"""One line on how a target took the tap's BATCH messages: exact, rows missing, or an error.

    python scripts/batch_verdict.py TARGET EXIT_CODE LOG SIMULATOR_URL jsonl FOLDER
    python scripts/batch_verdict.py TARGET EXIT_CODE LOG SIMULATOR_URL duckdb PATH SCHEMA
    python scripts/batch_verdict.py TARGET EXIT_CODE LOG SIMULATOR_URL postgres DSN SCHEMA

Rows per table come from what the target wrote (JSON lines files: one ``<stream>.jsonl``
each; a DuckDB or PostgreSQL schema) and are compared with the simulator's ``/_sim/truth``.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

from warehouse_counts import duckdb_counts, postgres_counts

#: A Python exception line, as a target's traceback ends.
ERROR = re.compile(r"\b[A-Za-z_.]*(?:Error|Exception): .*")


def jsonl_counts(folder: str) -> dict[str, int]:
    return {
        path.stem: sum(1 for line in path.open() if line.strip())
        for path in Path(folder).glob("*.jsonl")
    }


def last_error(log: str) -> str:
    lines = [match.group(0) for match in map(ERROR.search, log.splitlines()) if match]
    return lines[-1][:90] if lines else "(no exception in the log)"


def verdict(target: str, code: int, log: str, counts: dict[str, int], truth: dict[str, int]) -> str:
    served = sum(truth.values())
    loaded = sum(counts.get(table, 0) for table in truth)
    if code != 0:
        return f"{target}: error (exit {code}), {loaded:,} of {served:,} rows: {last_error(log)}"
    if all(counts.get(table) == expected for table, expected in truth.items()):
        return f"{target}: exact, {loaded:,} rows in {len(truth)} tables"
    short = sorted(t for t, n in truth.items() if counts.get(t, 0) != n)
    return (
        f"{target}: exit 0 but {loaded:,} of {served:,} rows (silently dropped; "
        f"{len(short)} of {len(truth)} tables short)"
    )


def main() -> int:
    target, code, log, simulator_url, kind, where, *rest = sys.argv[1:]
    if kind == "jsonl":
        counts = jsonl_counts(where)
    else:
        try:
            counts = (duckdb_counts if kind == "duckdb" else postgres_counts)(where, rest[0])
        except Exception:  # no warehouse at all: nothing was loaded
            counts = {}
    with urllib.request.urlopen(f"{simulator_url}/_sim/truth") as answer:
        truth = json.load(answer)
    print(verdict(target, int(code), Path(log).read_text(errors="replace"), counts, truth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
