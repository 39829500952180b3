"""Checks of scripts/scale_out.sh: plans, SQL against the simulator's truth, state, triggers.

    python scripts/scale_out_check.py plan OUT --batch-root S3_URL [--single]
    python scripts/scale_out_check.py union PLAN [--rerun]
    python scripts/scale_out_check.py state PLAN BUCKET PREFIX
    python scripts/scale_out_check.py counters OUT
    python scripts/scale_out_check.py saved-state PLAN PARTITION BUCKET PREFIX OUT
    python scripts/scale_out_check.py resumed PLAN PARTITION BEFORE AFTER KILLED BUCKET PREFIX
    python scripts/scale_out_check.py quiet BEFORE AFTER

The simulator is ``SIMULATOR_URL`` with its ``TAP_SEGMENTS_*`` settings in the environment;
the warehouse is ``PG_DSN``; S3 (moto) is reached through ``AWS_ENDPOINT_URL``. Each check
prints what it compared and exits 1 when it does not hold.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import typing as t
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestration.plan import Plan, load_plan  # noqa: E402

INDICATIVE_EXPORT = "/service/v1/segments/export"


def get_json(url: str, headers: dict[str, str] | None = None) -> t.Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def simulator(path: str) -> t.Any:
    return get_json(os.environ["SIMULATOR_URL"] + path)


# -- plans ------------------------------------------------------------------------------------


def artisan(path: str) -> t.Any:
    """An Artisan API answer, asked as a user would: with the Artisan keys."""
    env = os.environ
    headers = {
        "Authorization": f'Token token="{env["TAP_SEGMENTS_ARTISAN_SECRET_API_KEY"]}"',
        "public-api-key": env["TAP_SEGMENTS_ARTISAN_PUBLIC_API_KEY"],
    }
    return get_json(env["TAP_SEGMENTS_ARTISAN_BASE_URL"] + path, headers)


def artisan_app_ids() -> list[str]:
    return [str(app["id"]) for app in artisan("/public/api/apps")["apps"]]


def indicative_segment_ids() -> list[str]:
    env = os.environ
    auth = base64.b64encode(
        f"{env['TAP_SEGMENTS_INDICATIVE_API_KEY']}:{env['TAP_SEGMENTS_INDICATIVE_ACCESS_TOKEN']}".encode()
    ).decode()
    segments = get_json(
        env["TAP_SEGMENTS_INDICATIVE_BASE_URL"] + "/service/v1/segments/list",
        {"Authorization": f"Basic {auth}"},
    )
    return [str(segment["segmentId"]) for segment in segments]


def write_plan(out: Path, batch_root: str, single: bool) -> None:
    """The script's plans: one partition with every vendor, or four of about the same size:
    Artisan split by app (its org-wide ``artisan_jobs`` in the first), with Kissmetrics and
    Acoustic beside one half each, and Indicative split by segment."""
    if single:
        partitions: dict[str, t.Any] = {
            "unpartitioned": {"vendors": ["artisan", "indicative", "kissmetrics", "acoustic"]}
        }
    else:
        apps, segments = artisan_app_ids(), indicative_segment_ids()
        partitions = {
            "artisan-kissmetrics": {
                "vendors": ["artisan", "kissmetrics"],
                "settings": {"artisan_app_ids": apps[0::2]},
            },
            "artisan-acoustic": {
                "vendors": ["artisan", "acoustic"],
                "settings": {"artisan_app_ids": apps[1::2]},
            },
            "indicative-1": {
                "vendors": ["indicative"],
                "settings": {"indicative_segment_ids": segments[0::2]},
            },
            "indicative-2": {
                "vendors": ["indicative"],
                "settings": {"indicative_segment_ids": segments[1::2]},
            },
        }
    plan = {
        "extractor": "tap-segments",
        "loader": "target-postgres",
        "environment": "dev",
        "batch_root": batch_root,
        "env": {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "segments_{slug}"},
        "partitions": partitions,
    }
    out.write_text(json.dumps(plan, indent=2))  # JSON is YAML


# -- the warehouse against the simulator's truth ----------------------------------------------


def stream_keys() -> dict[str, list[str]]:
    """Key properties of every stream, from the tap's own discovery."""
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "tap-segments"), "--config", "ENV", "--discover"],
        capture_output=True,
        text=True,
        check=True,
    )
    catalog = json.loads(done.stdout)
    return {entry["tap_stream_id"]: list(entry["key_properties"]) for entry in catalog["streams"]}


def one_row(db: t.Any, sql: str, params: list | None = None) -> tuple:
    row = db.execute(sql, params or []).fetchone()
    assert row is not None, sql
    return tuple(row)


def schemas_with(plan: Plan, db: t.Any, stream: str) -> list[str]:
    """The partitions' schemas that hold a table for ``stream``."""
    return [
        schema
        for schema in (f"segments_{p.slug}" for p in plan.partitions)
        if db.execute(
            "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
            [schema, stream],
        ).fetchone()
    ]


def union_counts(plan: Plan, db: t.Any, stream: str, keys: list[str]) -> tuple[int, int, int]:
    """Rows of ``stream`` over every partition's schema, distinct keys among them, and how
    many partitions loaded any."""
    present = schemas_with(plan, db, stream)
    if not present:
        return 0, 0, 0
    columns = ", ".join(f'"{key}"' for key in keys)
    union = " union all ".join(f'select {columns} from "{s}"."{stream}"' for s in present)
    rows, distinct = one_row(db, f"select count(*), count(distinct ({columns})) from ({union}) u")
    loaded_by = sum(1 for s in present if one_row(db, f'select count(*) from "{s}"."{stream}"')[0])
    return rows, distinct, loaded_by


def artisan_jobs_hold(plan: Plan, db: t.Any, before_run: int) -> bool:
    """Artisan's job list is the organisation's: a partition reading it may already see export
    jobs another partition started (or not yet, by a hair). So: every job listed before the
    run (the first ``before_run``) is loaded, and every job loaded is one Artisan lists."""
    answer = artisan("/public/api/jobs")
    jobs = [item.get("jobs", item) for item in answer["jobs"]]  # REST items wrap each job
    listed = [str(job.get("id") or job.get("_id")) for job in jobs]
    schemas = schemas_with(plan, db, "artisan_jobs")
    union = " union all ".join(f'select id from "{schema}".artisan_jobs' for schema in schemas)
    loaded = {str(row[0]) for row in db.execute(f"select id from ({union}) u")}
    return set(listed[:before_run]) <= loaded <= set(listed)


def check_union(plan: Plan, rerun: bool) -> int:
    import psycopg

    truth = simulator("/_sim/truth" + ("?rerun=1" if rerun else ""))
    keys = stream_keys()
    ok = True
    total = 0
    print(f"{'stream':<28} {'rows':>8} {'truth':>8} {'keys':>8} {'partitions':>10}")
    with psycopg.connect(os.environ["PG_DSN"]) as db:
        for stream in sorted(truth):
            rows, distinct, loaded_by = union_counts(plan, db, stream, keys[stream])
            expected = f"{truth[stream]:>8}"
            if stream == "artisan_jobs" and len(plan.partitions) > 1:
                # its truth: the jobs before the run, and perhaps some exports of this run
                good = artisan_jobs_hold(plan, db, truth[stream])
                expected = f"{truth[stream]:>7}+"
            else:
                good = rows == truth[stream]
            good &= distinct == rows
            ok &= good
            total += rows
            mark = "" if good else "   <-- " + ("key twice" if distinct != rows else "differs")
            print(f"{stream:<28} {rows:>8} {expected} {distinct:>8} {loaded_by:>10}{mark}")
    print(f"{'all streams':<28} {total:>8}")
    print(
        f"union of {len(plan.partitions)} partition(s) equals the simulator's truth, no key twice"
        if ok
        else "MISMATCH"
    )
    return 0 if ok else 1


# -- state in the bucket ----------------------------------------------------------------------


def state_of(bucket: str, prefix: str, state_id: str) -> dict | None:
    import boto3

    client = boto3.client("s3")
    key = f"{prefix.strip('/')}/{state_id}/state.json"
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return t.cast(dict, json.loads(body))


def in_flight(state: dict) -> dict[str, dict]:
    """Exports in flight per stream, in the completed and the partial state."""
    found: dict[str, dict] = {}
    for part in ("completed", "partial"):
        bookmarks = (state.get(part) or {}).get("singer_state", {}).get("bookmarks", {})
        for stream, bookmark in bookmarks.items():
            if bookmark.get("exports_in_flight"):
                found.setdefault(stream, {}).update(bookmark["exports_in_flight"])
    return found


def batch_files(root: str) -> int:
    """How many BATCH files are under an s3:// root (the tap wrote BATCH, not RECORDs)."""
    import boto3

    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    pages = (
        boto3.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    )
    return sum(len(page.get("Contents", [])) for page in pages)


def check_state(plan: Plan, bucket: str, prefix: str) -> int:
    ok = True
    for partition in plan.partitions:
        state_id = plan.state_id(partition.key)
        state = state_of(bucket, prefix, state_id)
        ok &= state is not None
        detail = "MISSING" if state is None else f"{len(json.dumps(state))} bytes"
        print(f"s3://{bucket}/{prefix}/{state_id}/state.json: {detail}")
        if plan.batch_root:
            root = f"{plan.batch_root}/{partition.key}"
            files = batch_files(root)
            ok &= files > 0
            print(f"{root}/: {files} BATCH file(s)" + ("" if files else " MISSING"))
    print("each partition's state and BATCH files are in the bucket" if ok else "MISSING")
    return 0 if ok else 1


# -- trigger counters ---------------------------------------------------------------------------


def counters() -> dict[str, t.Any]:
    """What the simulated vendors counted: export triggers and runs, file downloads."""
    requests = simulator("/_sim/requests")
    posts = [r for r in requests if r["method"] == "POST"]
    return {
        "indicative_triggers": simulator("/_sim/indicative/triggers"),
        "kissmetrics_runs": sum(simulator("/_sim/kissmetrics-api/runs").values()),
        "artisan_exports": sum(1 for r in posts if r["vendor"] == "artisan"),
        "acoustic_file_downloads": sum(
            1 for r in requests if r["vendor"] == "acoustic" and "/segmentDataFiles/" in r["path"]
        ),
    }


def check_resumed(
    plan: Plan, key: str, before: dict, after: dict, killed_state: dict, bucket: str, prefix: str
) -> int:
    """The exports in flight at the kill were polled to the end, not triggered again, and
    their rows were loaded once."""
    import psycopg

    resumed = in_flight(killed_state).get("indicative_segment_exports", {})
    ok = bool(resumed)
    table = f'"segments_{plan.partition(key).slug}"."indicative_segment_members"'
    with psycopg.connect(os.environ["PG_DSN"]) as db:
        for segment, job in resumed.items():
            triggers = [counts["indicative_triggers"].get(segment) for counts in (before, after)]
            rows, keys = one_row(
                db,
                f'select count(*), count(distinct row_number) from {table} where "exportId" = %s',
                [job["job_id"]],
            )
            (expected,) = one_row(
                db,
                f'select count(*) from {table} where "segmentId" = %s and "exportId" <> %s',
                [segment, job["job_id"]],
            )
            good = triggers[0] == triggers[1] and rows == keys == expected
            ok &= good
            print(
                f"segment {segment}: export {job['job_id']} in flight at the kill; triggers "
                f"before the rerun {triggers[0]}, after {triggers[1]}; rows loaded {rows} "
                f"(its earlier export: {expected}){'' if good else '   <-- wrong'}"
            )
    left = in_flight(state_of(bucket, prefix, plan.state_id(key)) or {})
    ok &= not left
    print(f"exports in flight in {key}'s state after the rerun: {sum(map(len, left.values()))}")
    print("exports in flight resumed without a second trigger" if ok else "NOT RESUMED")
    return 0 if ok else 1


def check_quiet(before: dict, after: dict) -> int:
    """A rerun with nothing new triggers no change-aware export and reads no file again."""
    delta = {
        "Indicative export triggers": sum(after["indicative_triggers"].values())
        - sum(before["indicative_triggers"].values()),
        "Kissmetrics report runs": after["kissmetrics_runs"] - before["kissmetrics_runs"],
        "Acoustic file downloads": after["acoustic_file_downloads"]
        - before["acoustic_file_downloads"],
    }
    for what, count in delta.items():
        print(f"{what} during the rerun: {count}")
    artisan = after["artisan_exports"] - before["artisan_exports"]
    print(
        f"Artisan exports during the rerun: {artisan} (one per segment and one profile export "
        "per app, by design: Artisan segments have no change marker)"
    )
    ok = not any(delta.values())
    print("the rerun triggered no change-aware export" if ok else "UNEXPECTED TRIGGERS")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="scale_out_check.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan")
    plan.add_argument("out", type=Path)
    plan.add_argument("--batch-root", required=True)
    plan.add_argument("--single", action="store_true")
    union = sub.add_parser("union")
    union.add_argument("plan", type=Path)
    union.add_argument("--rerun", action="store_true")
    in_bucket = sub.add_parser("state")
    in_bucket.add_argument("plan", type=Path)
    in_bucket.add_argument("bucket")
    in_bucket.add_argument("prefix")
    snapshot = sub.add_parser("counters")
    snapshot.add_argument("out", type=Path)
    resumed = sub.add_parser("resumed")
    resumed.add_argument("plan", type=Path)
    resumed.add_argument("partition")
    for name in ("before", "after", "killed_state"):
        resumed.add_argument(name, type=Path)
    resumed.add_argument("bucket")
    resumed.add_argument("prefix")
    at_kill = sub.add_parser("saved-state")
    at_kill.add_argument("plan", type=Path)
    at_kill.add_argument("partition")
    at_kill.add_argument("bucket")
    at_kill.add_argument("prefix")
    at_kill.add_argument("out", type=Path)
    quiet = sub.add_parser("quiet")
    quiet.add_argument("before", type=Path)
    quiet.add_argument("after", type=Path)
    args = parser.parse_args()

    def read(path: Path) -> t.Any:
        return json.loads(path.read_text())

    if args.command == "plan":
        write_plan(args.out, args.batch_root, args.single)
        return 0
    if args.command == "union":
        return check_union(load_plan(args.plan), args.rerun)
    if args.command == "state":
        return check_state(load_plan(args.plan), args.bucket, args.prefix)
    if args.command == "counters":
        args.out.write_text(json.dumps(counters()))
        return 0
    if args.command == "saved-state":
        one = load_plan(args.plan)
        saved = state_of(args.bucket, args.prefix, one.state_id(args.partition)) or {}
        args.out.write_text(json.dumps(saved))
        flying = in_flight(saved)
        print(
            f"state of {args.partition} at the kill: "
            f"{sum(len(v) for v in flying.values())} export(s) in flight"
        )
        return 0 if flying else 1
    if args.command == "resumed":
        return check_resumed(
            load_plan(args.plan),
            args.partition,
            read(args.before),
            read(args.after),
            read(args.killed_state),
            args.bucket,
            args.prefix,
        )
    return check_quiet(read(args.before), read(args.after))


if __name__ == "__main__":
    sys.exit(main())
