"""Checks of a PostgreSQL warehouse loaded with ACTIVATE_VERSION messages.

    python scripts/activate_version_checks.py DSN SCHEMA SIMULATOR_URL --first JOBS_FILE
    python scripts/activate_version_checks.py DSN SCHEMA SIMULATOR_URL --second JOBS_FILE

Rows count when no ACTIVATE_VERSION retired them (deleted with ``hard_delete``, else marked
in ``_sdc_deleted_at``). After the first run, ``artisan_segment_members`` holds one snapshot
(one export job per segment, every row the simulator served); its job ids go to JOBS_FILE.
After the second run it still holds exactly one snapshot: the second run's (no job of
JOBS_FILE left, as many rows as one snapshot).

Every other table must keep what a run without ACTIVATE_VERSION keeps (``/_sim/truth``,
``?rerun=1`` after the second run), including the streams that keep their progress in the
tap's own state (they never send ACTIVATE_VERSION, so nothing of theirs is retired).
Exits 1 when a check fails.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import psycopg

SNAPSHOTS = "artisan_segment_members"
KNOWN_LOSS: set[str] = set()


def live_counts(dsn: str, schema: str) -> dict[str, int]:
    """Rows per table that no ACTIVATE_VERSION retired (hard: deleted; soft: _sdc_deleted_at)."""
    tables = "select table_name from information_schema.tables where table_schema = %s"
    with psycopg.connect(dsn) as db:
        names = [row[0] for row in db.execute(tables, [schema]).fetchall()]
        query = 'select count(*) from "{}"."{}" where _sdc_deleted_at is null'
        return {name: db.execute(query.format(schema, name)).fetchone()[0] for name in names}


def main() -> int:
    dsn, schema, simulator_url, step, jobs_file = sys.argv[1:6]
    rerun = step == "--second"
    with urllib.request.urlopen(f"{simulator_url}/_sim/truth{'?rerun=1' if rerun else ''}") as r:
        truth = json.load(r)
    with psycopg.connect(dsn) as db:
        rows = db.execute(
            f'select segment_id, job_id, count(*) from "{schema}"."{SNAPSHOTS}" '
            "where _sdc_deleted_at is null group by 1, 2"
        ).fetchall()
    jobs = {job for _, job, _ in rows}
    segments = [segment for segment, _, _ in rows]
    snapshot_rows = sum(count for _, _, count in rows)
    failures = []
    if len(segments) != len(set(segments)):
        failures.append(f"{SNAPSHOTS}: a segment has rows of more than one export job")
    # The simulator's truth for this stream is one snapshot (a rerun's doubles it).
    one_snapshot = truth[SNAPSHOTS] // 2 if rerun else truth[SNAPSHOTS]
    if snapshot_rows != one_snapshot:
        failures.append(f"{SNAPSHOTS}: {snapshot_rows} rows, one snapshot is {one_snapshot}")
    if rerun:
        stale = jobs & set(json.loads(Path(jobs_file).read_text()))
        if stale:
            failures.append(f"{SNAPSHOTS}: rows of the first run's jobs are left: {sorted(stale)}")
    else:
        Path(jobs_file).write_text(json.dumps(sorted(jobs)))

    counts = live_counts(dsn, schema)
    width = max(map(len, [*truth, "table"]))
    print(f"{'table':<{width}}  {'rows':>7}  {'without ACTIVATE_VERSION':>24}")
    for table in sorted(truth):
        loaded, expected = counts.get(table, 0), truth[table]
        note = "   (one snapshot: the latest)" if table == SNAPSHOTS else ""
        if table != SNAPSHOTS and loaded != expected:
            note = "   <-- fewer rows" if loaded < expected else "   <-- more rows"
            if table in KNOWN_LOSS and loaded < expected:
                note += " (known: see KNOWN_LOSS)"
            else:
                failures.append(f"{table}: {loaded} rows, {expected} without ACTIVATE_VERSION")
        print(f"{table:<{width}}  {loaded:>7}  {expected:>24}{note}")
    for failure in failures:
        print("FAILED:", failure)
    print("ACTIVATE_VERSION checks: " + ("passed" if not failures else "FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
