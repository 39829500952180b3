"""Partition plans: overlaps are refused by name, org-wide streams go to one partition, and a
partition's environment limits its run to its own vendors and ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestration.plan import PlanError, load_plan, partition_env, plan_from_dict

EXAMPLE = Path(__file__).resolve().parents[2] / "orchestration" / "partitions.example.yml"


def plan_of(partitions: dict, **top: object) -> dict:
    return {"partitions": partitions, **top}


def test_the_example_plan_gives_artisan_jobs_to_its_first_artisan_partition_only():
    plan = load_plan(EXAMPLE)
    excluded = {p.key: p.excluded_streams for p in plan.partitions}
    assert excluded == {
        "artisan-1": (),
        "artisan-2": ("artisan_jobs",),
        "indicative": (),
        "kissmetrics-acoustic": (),
    }
    assert plan.state_id("indicative") == "dev:tap-segments-to-target-postgres:indicative"


def test_an_id_in_two_partitions_is_refused_naming_both():
    raw = plan_of(
        {
            "a": {"vendors": ["indicative"], "settings": {"indicative_segment_ids": ["s1", "s2"]}},
            "b": {"vendors": ["indicative"], "settings": {"indicative_segment_ids": ["s2"]}},
        }
    )
    with pytest.raises(PlanError, match=r"indicative_segment_ids 's2' is in partitions a and b"):
        plan_from_dict(raw)


def test_a_vendor_shared_by_partitions_needs_its_id_setting_in_each():
    raw = plan_of(
        {
            "a": {"vendors": ["acoustic"], "settings": {"acoustic_job_categories": ["X"]}},
            "b": {"vendors": ["acoustic", "kissmetrics"]},
        }
    )
    with pytest.raises(PlanError, match=r"each must set acoustic_job_categories \(missing in b\)"):
        plan_from_dict(raw)


@pytest.mark.parametrize(
    ("partitions", "message"),
    [
        ({"A!": {"vendors": ["artisan"]}}, "partition key 'A!'"),
        ({"a": {"vendors": ["mailchimp"]}}, "unknown: mailchimp"),
        ({"a": {"vendors": []}}, "`vendors` must list"),
        (
            {"a": {"vendors": ["artisan"], "settings": {"indicative_segment_ids": ["s"]}}},
            "indicative_segment_ids is for indicative, not in its vendors",
        ),
        (
            {"a": {"vendors": ["artisan"], "settings": {"artisan_app_ids": "app-1"}}},
            "artisan_app_ids must be a non-empty list",
        ),
        ({}, "no partitions"),
    ],
)
def test_malformed_partitions_are_refused(partitions, message):
    with pytest.raises(PlanError, match=message):
        plan_from_dict(plan_of(partitions))


def test_partition_env_limits_vendors_ids_and_streams(tmp_path):
    plan = plan_from_dict(
        plan_of(
            {
                "art-1": {"vendors": ["artisan"], "settings": {"artisan_app_ids": ["a1"]}},
                "art-2": {
                    "vendors": ["artisan"],
                    "settings": {"artisan_app_ids": ["a2"], "max_concurrent_exports": 2},
                    "env": {"EXTRA": "{partition}"},
                },
            },
            batch_root="s3://bucket/batches/",
            env={"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "segments_{slug}"},
        )
    )
    env = partition_env(
        plan, plan.partition("art-2"), sys_dir=tmp_path / "art-2", tap_has_vendors_setting=False
    )
    assert env["MELTANO_SYS_DIR_ROOT"] == str(tmp_path / "art-2")
    assert env["MELTANO_AUTO_INSTALL"] == "false"
    for blanked in (
        "TAP_SEGMENTS_INDICATIVE_API_KEY",
        "TAP_SEGMENTS_INDICATIVE_ACCESS_TOKEN",
        "TAP_SEGMENTS_KISSMETRICS_API_TOKEN",
        "TAP_SEGMENTS_ACOUSTIC_AUTH_KEY",
    ):
        assert env[blanked] == ""
    assert "TAP_SEGMENTS_ARTISAN_SECRET_API_KEY" not in env  # its own credentials pass through
    assert "TAP_SEGMENTS_VENDORS" not in env
    assert json.loads(env["TAP_SEGMENTS_ARTISAN_APP_IDS"]) == ["a2"]
    assert env["TAP_SEGMENTS_MAX_CONCURRENT_EXPORTS"] == "2"
    assert json.loads(env["TAP_SEGMENTS__SELECT_FILTER"]) == ["!artisan_jobs"]
    assert "TAP_SEGMENTS_BATCH_CONFIG" not in env  # Meltano would ignore it: leaves only
    assert env["TAP_SEGMENTS_BATCH_CONFIG_ENCODING_FORMAT"] == "jsonl"
    assert env["TAP_SEGMENTS_BATCH_CONFIG_STORAGE_ROOT"] == "s3://bucket/batches/art-2"
    assert env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] == "segments_art_2"
    assert env["EXTRA"] == "art-2"

    first = partition_env(
        plan, plan.partition("art-1"), sys_dir=tmp_path / "art-1", tap_has_vendors_setting=True
    )
    assert "TAP_SEGMENTS__SELECT_FILTER" not in first
    assert json.loads(first["TAP_SEGMENTS_VENDORS"]) == ["artisan"]
