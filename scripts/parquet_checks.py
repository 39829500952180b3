"""BATCH parquet files read back with pyarrow against the simulator's rows.

    python scripts/parquet_checks.py FOLDER [--seed 1] [--scale demo]

Reads every parquet file of ``indicative_segment_members`` in FOLDER (a BATCH run's
``batch_config.storage.root``) with pyarrow and compares, export by export, the rows with
the ones the simulator of that seed and scale serves (``python -m simulator serve --seed S
--scale X``): every column of the file with its value, in order, ``row_number`` counting
from 1, and the columns' types (strings; ``row_number`` an int64). Exits 1 on a difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pyarrow.parquet as pq  # noqa: E402

from simulator.__main__ import SCALES  # noqa: E402
from simulator.indicative import IndicativeApp, IndicativeConfig  # noqa: E402

MEMBERS = "indicative_segment_members"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", default="demo", choices=sorted(SCALES))
    args = parser.parse_args()
    scale = SCALES[args.scale]
    app = IndicativeApp(
        args.seed, IndicativeConfig(segments=scale["segments"], rows_per_segment=scale["rows"])
    )
    files = sorted(p for p in args.folder.iterdir() if MEMBERS in p.name and ".parquet" in p.name)
    read: dict[str, list[dict]] = {}
    problems = []
    for path in files:
        table = pq.read_table(path)
        types = {field.name: str(field.type) for field in table.schema}
        if types.get("row_number") != "int64" or types.get("email") != "string":
            problems.append(f"{path.name}: column types {types}")
        for row in table.to_pylist():
            read.setdefault(row["segmentId"], []).append(row)
    for segment in app.segments:
        segment_id = segment["segmentId"]
        expected = app.member_rows(segment_id)
        got = sorted(read.pop(segment_id, []), key=lambda row: row["row_number"])
        if [row["row_number"] for row in got] != list(range(1, len(expected) + 1)):
            problems.append(f"segment {segment_id}: {len(got)} rows, {len(expected)} served")
            continue
        for row, served in zip(got, expected, strict=True):
            if {column: row.get(column) for column in served} != served:
                problems.append(f"segment {segment_id}, row {row['row_number']}: {row} != {served}")
                break
    problems += [f"segment {s}: not served by the simulator" for s in read]
    rows = sum(len(app.member_rows(s["segmentId"])) for s in app.segments)
    print(f"{len(files)} parquet file(s) of {MEMBERS}: {rows} rows checked against the simulator")
    for problem in problems:
        print(f"  DIFFERS: {problem}")
    print("parquet files hold the simulator's rows" if not problems else "PARQUET FILES DIFFER")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
