"""One partition's ``meltano run``: its own system directory linked to the installed plugins,
its state id suffix and environment, and a failure that names the partition and its log.
A stand-in ``meltano`` records what it was given."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from orchestration.meltano_project import MeltanoCommandError, MeltanoProject
from orchestration.plan import plan_from_dict

FAKE_MELTANO = f"""#!{sys.executable}
import json, os, sys
keep = ("MELTANO_SYS_DIR_ROOT", "MELTANO_AUTO_INSTALL", "TAP_SEGMENTS__SELECT_FILTER",
        "TAP_SEGMENTS_ARTISAN_APP_IDS", "TAP_SEGMENTS_INDICATIVE_API_KEY")
with open(os.environ["FAKE_MELTANO_RECORD"], "a") as record:
    call = {{"args": sys.argv[1:], "env": {{k: os.environ.get(k) for k in keep}},
            "cwd": os.getcwd()}}
    record.write(json.dumps(call) + "\\n")
print("extractor log line")
sys.exit(int(os.environ.get("FAKE_MELTANO_EXIT", "0")))
"""

PLAN = plan_from_dict(
    {
        "partitions": {
            "apps-1": {"vendors": ["artisan"], "settings": {"artisan_app_ids": ["a1"]}},
            "apps-2": {"vendors": ["artisan"], "settings": {"artisan_app_ids": ["a2"]}},
        }
    }
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MeltanoProject:
    root = tmp_path / "project"
    for folder in ("extractors", "loaders"):
        (root / ".meltano" / folder).mkdir(parents=True)
    meltano = tmp_path / "meltano"
    meltano.write_text(FAKE_MELTANO)
    meltano.chmod(meltano.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_MELTANO_RECORD", str(tmp_path / "calls.jsonl"))
    monkeypatch.delenv("FAKE_MELTANO_EXIT", raising=False)
    return MeltanoProject(root=root, meltano=str(meltano), sys_dirs=tmp_path / "sys")


def calls() -> list[dict]:
    lines = Path(os.environ["FAKE_MELTANO_RECORD"]).read_text().splitlines()
    return [json.loads(line) for line in lines]


def run(project: MeltanoProject, key: str) -> None:
    project.run_partition(PLAN, key, tap_has_vendors_setting=False, log=lambda _: None)


def test_each_partition_runs_in_its_own_system_dir_with_the_shared_plugins(project):
    run(project, "apps-1")
    run(project, "apps-2")
    first, second = calls()
    assert first["args"] == [
        "--environment=dev",
        "run",
        "--state-id-suffix=apps-1",
        "tap-segments",
        "target-postgres",
    ]
    assert first["cwd"] == str(project.root)
    sys_dirs = [Path(call["env"]["MELTANO_SYS_DIR_ROOT"]) for call in (first, second)]
    assert sys_dirs == [project.sys_dirs / "apps-1", project.sys_dirs / "apps-2"]
    for sys_dir in sys_dirs:
        for folder in ("extractors", "loaders"):
            link = sys_dir / folder
            assert link.is_symlink()
            assert link.resolve() == (project.root / ".meltano" / folder).resolve()
    assert first["env"]["MELTANO_AUTO_INSTALL"] == "false"
    assert json.loads(first["env"]["TAP_SEGMENTS_ARTISAN_APP_IDS"]) == ["a1"]
    assert first["env"]["TAP_SEGMENTS_INDICATIVE_API_KEY"] == ""
    assert first["env"]["TAP_SEGMENTS__SELECT_FILTER"] is None
    assert json.loads(second["env"]["TAP_SEGMENTS__SELECT_FILTER"]) == ["!artisan_jobs"]


def test_a_failed_run_names_the_partition_and_shows_its_log(project, monkeypatch):
    monkeypatch.setenv("FAKE_MELTANO_EXIT", "1")
    with pytest.raises(MeltanoCommandError, match=r"(?s)partition apps-2: .*extractor log line"):
        run(project, "apps-2")
    monkeypatch.setenv("FAKE_MELTANO_EXIT", "0")
    run(project, "apps-2")  # the rerun reuses the partition's system directory
    assert [call["env"]["MELTANO_SYS_DIR_ROOT"] for call in calls()] == [
        str(project.sys_dirs / "apps-2")
    ] * 2
