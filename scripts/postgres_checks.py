"""Checks of scripts/postgres_e2e.sh beyond row counts (those are scripts/warehouse_counts.py).

    python scripts/postgres_checks.py reset-log SIMULATOR_URL
    python scripts/postgres_checks.py mark DSN SCHEMA
    python scripts/postgres_checks.py rerun DSN SCHEMA SIMULATOR_URL MARK
    python scripts/postgres_checks.py same DSN SCHEMA OTHER_SCHEMA
    python scripts/postgres_checks.py storage SIMULATOR_URL

``reset-log`` empties the simulator's request log (before the second run).

``mark`` prints the newest ``_sdc_sync_started_at`` in SCHEMA (target-postgres stamps every
row it writes with the start of its run): the mark of the first run.

``rerun``, after a second run that used the first run's state: target-postgres upserts on
the primary key, so a row the tap emitted again would not change a count. This says, per
table, how many rows the second run wrote, and fails when it wrote any into a table of
incremental exports, or when the simulator's request log (reset before the second run)
shows an export triggered or a result file read for those vendors.

``same``: every table of SCHEMA holds the same rows as the table of the same name in
OTHER_SCHEMA (two loads of identical simulators, e.g. with RECORD and with BATCH messages),
compared on every column as text, except target metadata and what differs between two
runs (the ids and times of exports, signed file names, links naming the simulator's port).

``storage``: how many downloads the simulator's result-file storage served, and that none
of them carried a credential (``/_sim/storage/leaks``).

Each exits 1 when a check fails.
"""

from __future__ import annotations

import json
import sys
import typing as t
import urllib.request

import psycopg
from psycopg import sql

#: Tables a rerun with nothing new at the vendor must not write a row into.
INCREMENTAL_EXPORTS = (
    "indicative_segment_exports",
    "indicative_segment_members",
    "kissmetrics_report_results",
    "acoustic_segment_data",
)
#: Columns that differ between two loads of identical simulators.
VOLATILE = {"exportId", "job_id", "startTime", "endTime", "filename", "links"}


def tables(db: psycopg.Connection, schema: str) -> list[str]:
    query = "select table_name from information_schema.tables where table_schema = %s"
    return sorted(row[0] for row in db.execute(query, [schema]).fetchall())


def columns(db: psycopg.Connection, schema: str, table: str) -> list[str]:
    query = (
        "select column_name from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position"
    )
    return [row[0] for row in db.execute(query, [schema, table]).fetchall()]


def newest_sync(db: psycopg.Connection, schema: str) -> int:
    marks = [
        db.execute(
            sql.SQL("select coalesce(max(_sdc_sync_started_at), 0) from {}").format(
                sql.Identifier(schema, table)
            )
        ).fetchone()[0]  # type: ignore[index]
        for table in tables(db, schema)
    ]
    return max(marks, default=0)


def export_requests(simulator_url: str) -> list[str]:
    """Requests since the log was reset that trigger an export or read a result file of
    Indicative, Kissmetrics or Acoustic (listing segments, reports and jobs is fine)."""
    with urllib.request.urlopen(f"{simulator_url}/_sim/requests") as answer:
        log: list[dict[str, t.Any]] = json.load(answer)
    found = []
    for entry in log:
        vendor, method, path = entry["vendor"], entry["method"], entry["path"]
        listing = (
            (vendor.startswith("indicative") and path.endswith("/segments/list"))
            or (vendor.startswith("kissmetrics") and path.rstrip("/").endswith("/reports"))
            or (vendor.startswith("acoustic") and "segmentDataFiles/" not in path)
        )
        if vendor.startswith(("indicative", "kissmetrics", "acoustic")) and not (
            method == "GET" and listing
        ):
            found.append(f"{vendor} {method} {path}")
    return found


def rerun(dsn: str, schema: str, simulator_url: str, mark: int) -> bool:
    ok = True
    with psycopg.connect(dsn) as db:
        print(f"{'table':<32}  {'rows written by the rerun':>25}")
        for table in tables(db, schema):
            query = sql.SQL("select count(*) from {} where _sdc_sync_started_at > %s").format(
                sql.Identifier(schema, table)
            )
            written = db.execute(query, [mark]).fetchone()[0]  # type: ignore[index]
            bad = table in INCREMENTAL_EXPORTS and written
            ok &= not bad
            print(f"{table:<32}  {written:>25}{'   <-- exported again' if bad else ''}")
    requests = export_requests(simulator_url)
    for request in requests:
        print(f"rerun asked the vendor for an export or file: {request}")
    ok &= not requests
    print(
        "the rerun exported nothing again"
        if ok
        else "RERUN EXPORTED AGAIN (the state did not hold)"
    )
    return ok


def as_text(names: list[str], schema: str, table: str) -> sql.Composed:
    """``select`` of these columns of ``schema.table``, each cast to text (json compares)."""
    return sql.SQL("select {} from {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in names),
        sql.Identifier(schema, table),
    )


def same(dsn: str, schema: str, other: str) -> bool:
    ok = True
    with psycopg.connect(dsn) as db:
        names = tables(db, schema)
        if names != tables(db, other):
            print(f"tables differ: {names} vs {tables(db, other)}")
            return False
        for table in names:
            mine, theirs = columns(db, schema, table), columns(db, other, table)
            compared = [c for c in mine if not c.startswith("_sdc_") and c not in VOLATILE]
            differing = []
            for left, right in ((schema, other), (other, schema)):
                query = sql.SQL("select count(*) from ({} except all {}) as rows").format(
                    as_text(compared, left, table), as_text(compared, right, table)
                )
                differing.append(db.execute(query).fetchone()[0])  # type: ignore[index]
            unmatched = sorted(set(mine) ^ set(theirs))
            same_rows = differing == [0, 0] and not unmatched
            ok &= same_rows
            print(
                f"{table:<32}  {len(compared):>2} columns  "
                + ("same rows" if same_rows else f"DIFFER {differing} {unmatched}")
            )
    print("both schemas hold the same rows" if ok else "SCHEMAS DIFFER")
    return ok


def storage(simulator_url: str) -> bool:
    def get(path: str) -> t.Any:
        with urllib.request.urlopen(f"{simulator_url}/_sim/storage/{path}") as answer:
            return json.load(answer)

    served, leaks = get("requests"), get("leaks")
    print(f"result-file storage: {len(served)} request(s), credentials seen there: {len(leaks)}")
    return bool(served) and not leaks


def main() -> int:
    if sys.argv[1:2] == ["storage"]:
        return 0 if storage(sys.argv[2]) else 1
    if sys.argv[1:2] == ["reset-log"]:
        request = urllib.request.Request(f"{sys.argv[2]}/_sim/reset-log", method="POST")
        urllib.request.urlopen(request).close()
        return 0
    command, dsn, schema, *rest = sys.argv[1:]
    if command == "mark":
        with psycopg.connect(dsn) as db:
            print(newest_sync(db, schema))
        return 0
    if command == "rerun":
        return 0 if rerun(dsn, schema, rest[0], int(rest[1])) else 1
    if command == "same":
        return 0 if same(dsn, schema, rest[0]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
