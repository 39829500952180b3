"""The demo's closing summary: rows per table against the simulator, exports, wall time.

    python scripts/demo_summary.py --warehouse output/warehouse.duckdb --schema segments \
        --simulator URL --log output/demo-meltano.log --seconds 91 --run-seconds 35 \
        [--note "tap on Python 3.13.0, ..."]

Rows come from the warehouse and are compared with the simulator's ``/_sim/truth``.
Exports triggered are counted at the far side of the wire: the simulator's request log
(every POST the tap may send to a simulated vendor is an export trigger: Artisan segment and
profile exports, Indicative exports, Kissmetrics report runs). Resumed ones are the tap's
"resumed from state" log lines; skipped ones are Indicative segments the vendor listed but
the tap did not export because their ``lastRun`` had not moved (``/_sim/indicative/triggers``).

The result-file storage says how many downloads it served and whether any carried a
credential (``/_sim/storage/requests``, ``/_sim/storage/leaks``).

Exits 1 when a table's count differs from what the simulator served, or when a credential
reached the storage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import typing as t
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from warehouse_counts import duckdb_counts

RESUMED = re.compile(r"export \S+ for \S+ resumed from state")


@dataclass
class Exports:
    triggered: Counter[str]
    resumed: int
    skipped: int

    def line(self) -> str:
        per_vendor = ", ".join(f"{v} {n}" for v, n in sorted(self.triggered.items()))
        triggered = sum(self.triggered.values())
        return (
            f"exports: {triggered} triggered ({per_vendor or 'none'}), "
            f"{self.resumed} resumed from state, {self.skipped} skipped (Indicative segment "
            "unchanged)"
        )


def count_exports(
    requests: t.Iterable[dict[str, t.Any]], indicative_triggers: dict[str, int], log: str
) -> Exports:
    """Exports of a run, from the simulator's request log and trigger counts and the tap's log."""
    triggered = Counter(
        r["vendor"] for r in requests if r["method"] == "POST" and 200 <= r["status"] < 300
    )
    skipped = sum(1 for count in indicative_triggers.values() if count == 0)
    return Exports(triggered, len(RESUMED.findall(log)), skipped)


def rows_lines(counts: dict[str, int], truth: dict[str, int]) -> tuple[list[str], bool]:
    """The per-table table and a closing verdict; and whether every table is exact."""
    width = max(map(len, [*truth, *counts, "table"]))
    lines = [f"{'table':<{width}}  {'rows':>9}  {'simulator':>9}"]
    differ = []
    for table in sorted(set(truth) | set(counts)):
        loaded, expected = counts.get(table), truth.get(table)
        if loaded != expected:
            differ.append(table)
        shown = ["-" if value is None else f"{value:,}" for value in (loaded, expected)]
        mark = "" if loaded == expected else "   <-- differs"
        lines.append(f"{table:<{width}}  {shown[0]:>9}  {shown[1]:>9}{mark}")
    if differ:
        lines.append(f"rows: {len(differ)} table(s) differ from the simulator: {', '.join(differ)}")
    else:
        total = sum(counts.values())
        lines.append(f"rows: all {len(counts)} tables exact ({total:,} rows, as served)")
    return lines, not differ


def get_json(url: str) -> t.Any:
    with urllib.request.urlopen(url) as answer:
        return json.load(answer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--simulator", required=True)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--seconds", required=True, type=float)
    parser.add_argument("--run-seconds", required=True, type=float)
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    counts = duckdb_counts(args.warehouse, args.schema)
    rows, exact = rows_lines(counts, get_json(f"{args.simulator}/_sim/truth"))
    exports = count_exports(
        get_json(f"{args.simulator}/_sim/requests"),
        get_json(f"{args.simulator}/_sim/indicative/triggers"),
        args.log.read_text(errors="replace"),
    )
    storage = get_json(f"{args.simulator}/_sim/storage/requests")
    leaks = get_json(f"{args.simulator}/_sim/storage/leaks")
    print("==> summary" + ("" if exact and not leaks else ": MISMATCH"))
    print("\n".join(rows))
    print(exports.line())
    print(f"result-file storage: {len(storage)} request(s), credentials seen there: {len(leaks)}")
    print(f"wall time: {args.seconds:.0f} s (meltano run {args.run_seconds:.0f} s)")
    if args.note:
        print(args.note)
    print(f"meltano log: {args.log}")
    return 0 if exact and not leaks else 1


if __name__ == "__main__":
    sys.exit(main())
