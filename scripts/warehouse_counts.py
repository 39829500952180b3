"""Print the row count of every table a run loaded, next to the simulator's truth.

    python scripts/warehouse_counts.py duckdb PATH SCHEMA SIMULATOR_URL
    python scripts/warehouse_counts.py postgres DSN SCHEMA SIMULATOR_URL [--rerun]

With ``--rerun`` (after a second, incremental run) the expected counts are the simulator's
``/_sim/truth?rerun=1``: the same rows (a duplicate would show as a higher count), plus what
the first run created at the vendor and the second run rightly picked up (Artisan's export
jobs, updated after the first run read the jobs list).

Exits 1 when a table's count differs from what the simulator served (or a table is missing).
"""

from __future__ import annotations

import json
import sys
import typing as t
import urllib.request

TABLES = "select table_name from information_schema.tables where table_schema = {marker}"


def table_counts(db: t.Any, schema: str, marker: str) -> dict[str, int]:
    """Rows per table of ``schema`` through a DB-API-like connection (``marker``: its
    parameter placeholder)."""
    tables = [row[0] for row in db.execute(TABLES.format(marker=marker), [schema]).fetchall()]
    return {t: db.execute(f'select count(*) from "{schema}"."{t}"').fetchone()[0] for t in tables}


def duckdb_counts(path: str, schema: str) -> dict[str, int]:
    import duckdb

    with duckdb.connect(path, read_only=True) as db:
        return table_counts(db, schema, "?")


def postgres_counts(dsn: str, schema: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as db:
        return table_counts(db, schema, "%s")


def main() -> int:
    kind, where, schema, simulator_url = sys.argv[1:5]
    counts = duckdb_counts(where, schema) if kind == "duckdb" else postgres_counts(where, schema)
    query = "?rerun=1" if "--rerun" in sys.argv else ""
    with urllib.request.urlopen(f"{simulator_url}/_sim/truth{query}") as answer:
        truth = json.load(answer)
    width = max(map(len, [*truth, *counts, "table"]))
    print(f"{'table':<{width}}  {'rows':>9}  {'simulator':>9}")
    ok = True
    for table in sorted(set(truth) | set(counts)):
        loaded, expected = counts.get(table), truth.get(table)
        mark = "" if loaded == expected else "   <-- differs"
        ok &= loaded == expected
        shown = ["-" if value is None else str(value) for value in (loaded, expected)]
        print(f"{table:<{width}}  {shown[0]:>9}  {shown[1]:>9}{mark}")
    print("all tables match the simulator" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
