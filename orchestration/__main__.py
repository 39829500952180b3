"""``python -m orchestration``: check a partition plan, or run it through Dagster.

    python -m orchestration check                   # the plan: partitions, vendors, state ids
    python -m orchestration run                     # every partition (job sync_all_partitions)
    python -m orchestration run --partition KEY     # one partition (job sync_partition)

``run`` executes the job in the Dagster instance of ``DAGSTER_HOME`` (the multiprocess
executor needs a persistent one) and ends with one JSON line: the job, run id, success,
wall seconds, CPU seconds of the partitions' meltano, tap and target processes, and what
each partition did. It exits 1 when the run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m orchestration", description=__doc__)
    parser.add_argument("--plan", type=Path, help="partition plan (default: PARTITION_PLAN)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check the plan and print its partitions")
    run = sub.add_parser("run", help="run the partitions through Dagster")
    run.add_argument("--partition", help="run this partition only (job sync_partition)")
    return parser.parse_args()


def check() -> int:
    from orchestration.definitions import PLAN, plan_path

    print(f"plan {plan_path()}: {len(PLAN.partitions)} partition(s)")
    for partition in PLAN.partitions:
        limits = ", ".join(f"{k}={v}" for k, v in partition.settings.items()) or "all ids"
        excluded = (
            f"; excludes {', '.join(partition.excluded_streams)}"
            if partition.excluded_streams
            else ""
        )
        print(
            f"  {partition.key}: {', '.join(partition.vendors)} ({limits}){excluded}; "
            f"state id {PLAN.state_id(partition.key)}"
        )
    return 0


def run(partition: str | None) -> int:
    import dagster as dg

    from orchestration import definitions

    if not os.environ.get("DAGSTER_HOME"):
        print("error: set DAGSTER_HOME (a folder for the Dagster instance)", file=sys.stderr)
        return 2
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    job = definitions.sync_partition if partition else definitions.sync_all_partitions
    tags = {"dagster/partition": partition} if partition else {}
    if partition:
        definitions.PLAN.partition(partition)  # an unknown key fails here, by name
    began = time.monotonic()
    with (
        dg.DagsterInstance.get() as instance,
        dg.execute_job(dg.reconstructable(job), instance=instance, tags=tags) as result,
    ):
        seconds = time.monotonic() - began
        partitions = {}
        for event in result.all_events:
            if event.is_successful_output and (event.step_key or "").startswith("sync"):
                output = result.output_for_node(str(event.step_key))
                partitions[output["partition"]] = output
        failed = [event.step_key for event in result.all_events if event.is_step_failure]
    summary = {
        "job": job.name,
        "run_id": result.run_id,
        "success": result.success,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(sum(p["cpu_seconds"] for p in partitions.values()), 1),
        "partitions": partitions,
        "failed_steps": failed,
    }
    print(json.dumps(summary))
    return 0 if result.success else 1


def main() -> int:
    args = parse_args()
    if args.plan:
        os.environ["PARTITION_PLAN"] = str(args.plan.resolve())
    return check() if args.command == "check" else run(args.partition)


if __name__ == "__main__":
    sys.exit(main())
