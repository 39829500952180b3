"""Running ``meltano`` for partitions: one system directory each, plugins installed once.

Meltano 4.4.1 writes a tap's catalog to ``.meltano/run/<tap>/tap.properties.json`` and deletes
it after the run, so two runs side by side in one project break each other (meltano issue
8763). Each partition therefore gets its own Meltano system directory
(``MELTANO_SYS_DIR_ROOT=<sys_dirs>/<partition>``) whose plugin folders (``extractors``,
``loaders``, ...) link to the project's, installed once by ``install`` before the partitions
start. Their state lives in the one state backend of the project (``state_backend.uri``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

from orchestration.plan import Plan, partition_env

#: Folders of ``.meltano`` that hold installed plugins (shared by every partition).
PLUGIN_FOLDERS = ("extractors", "loaders", "mappers", "utilities", "transformers", "orchestrators")
REPO = Path(__file__).resolve().parents[1]


class MeltanoCommandError(RuntimeError):
    """A meltano command failed; the message ends with the tail of its output."""


@dataclass(frozen=True)
class PartitionRun:
    """What one partition's ``meltano run`` did."""

    partition: str
    state_id: str
    returncode: int
    seconds: float
    #: CPU time of meltano, the tap and the target of this partition.
    cpu_seconds: float
    log_path: str

    def to_dict(self) -> dict[str, t.Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class MeltanoProject:
    """A Meltano project on disk and the ``meltano`` executable that runs it."""

    root: Path
    meltano: str
    sys_dirs: Path

    @classmethod
    def from_env(cls) -> MeltanoProject:
        """``MELTANO_PROJECT_ROOT`` (default: this repository), ``MELTANO_BIN`` (default:
        its ``.venv-meltano``, else ``meltano`` on PATH) and ``PARTITION_SYS_DIRS`` (default:
        ``<project>/.meltano/partitions``)."""
        root = Path(os.environ.get("MELTANO_PROJECT_ROOT") or REPO).resolve()
        bundled = root / ".venv-meltano" / "bin" / "meltano"
        meltano = os.environ.get("MELTANO_BIN") or (str(bundled) if bundled.exists() else "")
        meltano = meltano or shutil.which("meltano") or "meltano"
        sys_dirs = Path(os.environ.get("PARTITION_SYS_DIRS") or root / ".meltano" / "partitions")
        return cls(root=root, meltano=meltano, sys_dirs=sys_dirs)

    def command(self, plan: Plan, *args: str) -> list[str]:
        return [self.meltano, f"--environment={plan.environment}", *args]

    def check_output(self, plan: Plan, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a meltano command in the project's own system directory; its stdout."""
        done = subprocess.run(
            self.command(plan, *args),
            cwd=self.root,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise MeltanoCommandError(f"meltano {' '.join(args)} failed:\n{tail}")
        return done.stdout

    def install(self, plan: Plan) -> None:
        """Install the plan's extractor and loader once, in the project's ``.meltano``."""
        self.check_output(plan, "install", plan.extractor, plan.loader)

    def tap_settings(self, plan: Plan) -> set[str]:
        """The settings the installed extractor declares (``--about``)."""
        about = json.loads(
            self.check_output(plan, "invoke", plan.extractor, "--about", "--format=json")
        )
        return set(about.get("settings", {}).get("properties", {}))

    def sys_dir(self, partition: str) -> Path:
        """The partition's Meltano system directory, its plugin folders linked to the project's."""
        sys_dir = self.sys_dirs / partition
        sys_dir.mkdir(parents=True, exist_ok=True)
        shared = self.root / ".meltano"
        for folder in PLUGIN_FOLDERS:
            link = sys_dir / folder
            if (shared / folder).is_dir() and not link.is_symlink():
                if link.exists():
                    shutil.rmtree(link)
                link.symlink_to(shared / folder, target_is_directory=True)
        return sys_dir

    def run_partition(
        self,
        plan: Plan,
        key: str,
        *,
        tap_has_vendors_setting: bool,
        log: t.Callable[[str], None] = print,
    ) -> PartitionRun:
        """``meltano run --state-id-suffix=<key> <extractor> <loader>`` for one partition."""
        partition = plan.partition(key)
        sys_dir = self.sys_dir(key)
        env = partition_env(
            plan, partition, sys_dir=sys_dir, tap_has_vendors_setting=tap_has_vendors_setting
        )
        log_path = sys_dir / "logs" / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        log_path.parent.mkdir(exist_ok=True)
        command = self.command(plan, "run", f"--state-id-suffix={key}", plan.extractor, plan.loader)
        log(f"partition {key}: {' '.join(command[1:])}; state id {plan.state_id(key)}")
        log(f"partition {key}: log {log_path}")
        began, cpu_before = time.monotonic(), children_cpu_seconds()
        with log_path.open("w") as output:
            done = subprocess.run(
                command,
                cwd=self.root,
                env={**os.environ, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        result = PartitionRun(
            partition=key,
            state_id=plan.state_id(key),
            returncode=done.returncode,
            seconds=time.monotonic() - began,
            cpu_seconds=children_cpu_seconds() - cpu_before,
            log_path=str(log_path),
        )
        if done.returncode != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise MeltanoCommandError(
                f"partition {key}: meltano run exited with {done.returncode} after "
                f"{result.seconds:.1f} s (log {log_path}):\n{tail}"
            )
        log(f"partition {key}: done in {result.seconds:.1f} s ({result.cpu_seconds:.1f} s CPU)")
        return result


def children_cpu_seconds() -> float:
    """CPU time of the processes this one started and waited for, and of theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
