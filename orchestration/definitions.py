"""The partitioned sync as Dagster jobs: ``dagster dev -m orchestration.definitions``.

The partitions come from the plan file named by ``PARTITION_PLAN`` (default
``orchestration/partitions.yml``, else ``orchestration/partitions.example.yml``), read when
the definitions load, so they are static partitions: ``PARTITIONS``.

- ``sync_all_partitions``: one run, one step per partition, executed side by side by
  Dagster's multiprocess executor (as many processes as partitions). ``prepare`` installs the
  plugins once first; ``report`` gathers what each partition did.
- ``sync_partition``: the same step for one partition key of ``PARTITIONS``: rerun one
  partition, or let a Dagster deployment backfill the partitions as separate runs (its run
  coordinator then decides how many run at once).

Every step runs ``meltano run --state-id-suffix=<partition>`` in its own Meltano system
directory (``orchestration.meltano_project``).
"""

import os
import typing as t
from pathlib import Path

import dagster as dg
from dagster import OpExecutionContext

from orchestration.meltano_project import MeltanoProject
from orchestration.plan import Plan, load_plan

HERE = Path(__file__).resolve().parent


def plan_path() -> Path:
    """``PARTITION_PLAN``, else ``partitions.yml`` beside this file, else the example."""
    if os.environ.get("PARTITION_PLAN"):
        return Path(os.environ["PARTITION_PLAN"])
    own = HERE / "partitions.yml"
    return own if own.exists() else HERE / "partitions.example.yml"


PLAN: Plan = load_plan(plan_path())
PARTITIONS = dg.StaticPartitionsDefinition(PLAN.keys)


@dg.op(description="Install the plan's extractor and loader once; ask the tap its settings.")
def prepare(context: OpExecutionContext) -> dict:
    project = MeltanoProject.from_env()
    project.install(PLAN)
    has_vendors = "vendors" in project.tap_settings(PLAN)
    how = "the tap's `vendors` setting" if has_vendors else "their credentials alone"
    context.log.info(
        f"plugins installed in {project.root / '.meltano'}; partitions are limited to their "
        f"vendors by {how}"
    )
    return {"tap_has_vendors_setting": has_vendors}


def sync_op(key: str | None) -> dg.OpDefinition:
    """The step that syncs partition ``key`` (None: the run's partition key)."""
    name = f"sync_{PLAN.partition(key).slug}" if key else "sync"

    @dg.op(name=name, tags={"partition": key or "run"}, description="meltano run of a partition")
    def sync(context: OpExecutionContext, prepared: dict) -> dict:
        partition = key or context.partition_key
        run = MeltanoProject.from_env().run_partition(
            PLAN,
            partition,
            tap_has_vendors_setting=bool(prepared["tap_has_vendors_setting"]),
            log=context.log.info,
        )
        return run.to_dict()

    return sync


@dg.op(description="What each partition did: its state id and time.")
def report(context: OpExecutionContext, runs: list[dict]) -> list[dict]:
    for run in runs:
        context.log.info(f"{run['partition']}: {run['seconds']:.1f} s, state id {run['state_id']}")
    return runs


#: One process per step, forked from a server that imported Dagster and this module once.
FORKSERVER = {"forkserver": {"preload_modules": [__name__]}}


@dg.job(
    description="Every partition of the plan side by side, one process each.",
    executor_def=dg.multiprocess_executor.configured(
        {"max_concurrent": len(PLAN.partitions), "start_method": FORKSERVER}
    ),
    tags={"plan": str(plan_path())},
)
def sync_all_partitions() -> None:
    prepared = prepare()
    report([sync_op(key)(prepared) for key in PLAN.keys])


@dg.job(
    description="One partition of the plan (a backfill runs each partition as its own run).",
    partitions_def=PARTITIONS,
    executor_def=dg.multiprocess_executor.configured({"start_method": FORKSERVER}),
    tags={"plan": str(plan_path())},
)
def sync_partition() -> None:
    sync_op(None)(prepare())


defs = dg.Definitions(jobs=[sync_all_partitions, sync_partition])

__all__: t.Sequence[str] = ["PARTITIONS", "PLAN", "defs", "sync_all_partitions", "sync_partition"]
