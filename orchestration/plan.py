"""Partition plans: which share of the vendors' data each partitioned run syncs.

A plan (YAML, see ``orchestration/partitions.example.yml``) names partitions. Each one limits
the tap to some vendors and, within a vendor, to some ids through the tap's own settings
(``artisan_app_ids``, ``indicative_segment_ids``, ``kissmetrics_report_ids``,
``acoustic_job_categories``). ``load_plan`` reads a plan and checks the promise that makes
partitions safe to run side by side: two partitions never export or emit the same thing.

- A vendor read by several partitions must be split by its id setting, in every one of them,
  into disjoint lists: a partition without the setting would read all of that vendor's data.
- Streams that no id setting limits (``ORG_WIDE_STREAMS``: the whole organisation's data)
  are emitted by one partition only, the first of that vendor in the plan; the others exclude
  them with Meltano's ``select_filter``.
- Each partition has its own state id (``meltano run --state-id-suffix=<partition>``), so its
  state holds only its own exports in flight.

``partition_env`` turns a partition into the environment of its ``meltano run``. Nothing here
imports Dagster or Meltano: the plan is plain data, checked by the main test suite.
"""

from __future__ import annotations

import json
import re
import typing as t
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

#: The vendors the tap reads, with the settings that enable each (its credentials).
VENDOR_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "artisan": ("artisan_public_api_key", "artisan_secret_api_key"),
    "indicative": ("indicative_api_key", "indicative_access_token"),
    "kissmetrics": ("kissmetrics_api_token",),
    "acoustic": ("acoustic_auth_key",),
}
#: The setting that splits a vendor's data into disjoint shares.
ID_SETTINGS: dict[str, str] = {
    "artisan": "artisan_app_ids",
    "indicative": "indicative_segment_ids",
    "kissmetrics": "kissmetrics_report_ids",
    "acoustic": "acoustic_job_categories",
}
#: Streams that the vendor's id setting does not limit: every partition of the vendor would
#: emit all of them. ``artisan_jobs`` lists the organisation's jobs. (``artisan_apps``,
#: ``kissmetrics_reports``, ``acoustic_scheduled_jobs`` and ``acoustic_segment_data``, read
#: only by the partition whose categories include SEGMENT_EXPORT, follow the id setting:
#: tests/orchestration/test_partitioned_tap.py checks both lists.)
ORG_WIDE_STREAMS: dict[str, tuple[str, ...]] = {
    "artisan": ("artisan_jobs",),
    "indicative": (),
    "kissmetrics": (),
    "acoustic": (),
}
#: Partition keys become state id suffixes, folder names and schema names.
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class PlanError(ValueError):
    """A plan that cannot be run safely; the message lists every problem found."""


@dataclass(frozen=True)
class Partition:
    """One partitioned run: the vendors it reads and the tap settings that limit it."""

    key: str
    vendors: tuple[str, ...]
    settings: t.Mapping[str, t.Any] = field(default_factory=dict)
    env: t.Mapping[str, str] = field(default_factory=dict)
    #: Org-wide streams another partition emits (set by ``load_plan``).
    excluded_streams: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        """The key with ``-`` as ``_``: usable as a SQL schema or identifier."""
        return self.key.replace("-", "_")

    def ids(self, vendor: str) -> list[str] | None:
        """The ids this partition is limited to for ``vendor``, or None (all of them)."""
        value = self.settings.get(ID_SETTINGS[vendor])
        return [str(item) for item in value] if value else None


@dataclass(frozen=True)
class Plan:
    """The partitions of one extractor-loader pair."""

    partitions: tuple[Partition, ...]
    extractor: str = "tap-segments"
    loader: str = "target-postgres"
    environment: str = "dev"
    #: BATCH files go under ``<batch_root>/<partition>/`` (any fsspec URL, e.g. ``s3://b/p``).
    batch_root: str | None = None
    #: Environment of every partition's run; ``{partition}`` and ``{slug}`` are replaced.
    env: t.Mapping[str, str] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [partition.key for partition in self.partitions]

    def partition(self, key: str) -> Partition:
        for partition in self.partitions:
            if partition.key == key:
                return partition
        raise KeyError(f"no partition {key!r} in the plan (partitions: {', '.join(self.keys)})")

    def state_id(self, key: str) -> str:
        """The state id Meltano keeps this partition's state under."""
        return f"{self.environment}:{self.extractor}-to-{self.loader}:{key}"


def load_plan(path: str | Path) -> Plan:
    """Read a plan file and check it (``PlanError`` lists every problem)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PlanError(f"cannot read the partition plan {path}: {exc}") from None
    return plan_from_dict(raw, source=str(path))


def plan_from_dict(raw: t.Any, source: str = "plan") -> Plan:
    """Build and check a plan from its parsed YAML."""
    if not isinstance(raw, dict) or not isinstance(raw.get("partitions"), dict):
        raise PlanError(f"{source}: expected a mapping with a `partitions` mapping")
    problems: list[str] = []
    partitions = []
    for key, spec in raw["partitions"].items():
        partition, errors = _partition(str(key), spec or {})
        partitions.append(partition)
        problems += errors
    plan = Plan(
        partitions=tuple(partitions),
        extractor=str(raw.get("extractor", "tap-segments")),
        loader=str(raw.get("loader", "target-postgres")),
        environment=str(raw.get("environment", "dev")),
        batch_root=str(raw["batch_root"]).rstrip("/") if raw.get("batch_root") else None,
        env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
    )
    problems += overlaps(plan)
    if not plan.partitions:
        problems.append("the plan has no partitions")
    if problems:
        raise PlanError(f"{source}: " + "; ".join(problems))
    return assign_org_wide_streams(plan)


def _partition(key: str, spec: t.Mapping[str, t.Any]) -> tuple[Partition, list[str]]:
    problems = []
    if not KEY_PATTERN.match(key):
        problems.append(
            f"partition key {key!r} must be lower-case letters, digits, '-' or '_' "
            "(it becomes a state id suffix and a folder name)"
        )
    vendors = tuple(str(v) for v in spec.get("vendors") or ())
    unknown = [v for v in vendors if v not in VENDOR_CREDENTIALS]
    if not vendors or unknown:
        problems.append(
            f"partition {key}: `vendors` must list some of {', '.join(VENDOR_CREDENTIALS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    settings = dict(spec.get("settings") or {})
    for name in settings:
        owner = name.split("_", 1)[0]
        if owner in VENDOR_CREDENTIALS and owner not in vendors:
            problems.append(f"partition {key}: setting {name} is for {owner}, not in its vendors")
    for vendor, setting in ID_SETTINGS.items():
        value = settings.get(setting)
        if value is not None and (not isinstance(value, list) or not value):
            problems.append(
                f"partition {key}: {setting} must be a non-empty list (of {vendor} ids)"
            )
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    return Partition(key, vendors, settings, env), problems


def overlaps(plan: Plan) -> list[str]:
    """Every way two partitions of the plan would read the same data."""
    problems = []
    seen_keys: set[str] = set()
    for partition in plan.partitions:
        if partition.key in seen_keys:
            problems.append(f"partition {partition.key} appears twice")
        seen_keys.add(partition.key)
    for vendor, setting in ID_SETTINGS.items():
        sharing = [p for p in plan.partitions if vendor in p.vendors]
        if len(sharing) < 2:
            continue
        unlimited = [p.key for p in sharing if p.ids(vendor) is None]
        if unlimited:
            problems.append(
                f"{vendor} is read by partitions {', '.join(p.key for p in sharing)}: each must "
                f"set {setting} (missing in {', '.join(unlimited)}), or give {vendor} to one "
                "partition"
            )
            continue
        owner: dict[str, str] = {}
        for partition in sharing:
            for item in partition.ids(vendor) or []:
                if item in owner and owner[item] != partition.key:
                    problems.append(
                        f"{setting} {item!r} is in partitions {owner[item]} and {partition.key}"
                    )
                owner.setdefault(item, partition.key)
    return problems


def assign_org_wide_streams(plan: Plan) -> Plan:
    """The first partition of each vendor emits its org-wide streams; the others exclude them."""
    partitions = []
    for index, partition in enumerate(plan.partitions):
        earlier = plan.partitions[:index]
        excluded = tuple(
            stream
            for vendor in partition.vendors
            if any(vendor in other.vendors for other in earlier)
            for stream in ORG_WIDE_STREAMS[vendor]
        )
        partitions.append(replace(partition, excluded_streams=excluded))
    return replace(plan, partitions=tuple(partitions))


def env_prefix(plugin: str) -> str:
    """Meltano's environment variable prefix of a plugin's settings (``TAP_SEGMENTS``)."""
    return re.sub(r"[^A-Z0-9]", "_", plugin.upper())


def setting_value(value: t.Any) -> str:
    """A setting as Meltano reads it from the environment (JSON for arrays and objects)."""
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value)
    return str(value)


def partition_env(
    plan: Plan,
    partition: Partition,
    *,
    sys_dir: Path,
    tap_has_vendors_setting: bool,
) -> dict[str, str]:
    """Environment variables (to add to the current ones) of this partition's ``meltano run``.

    The vendors left out get empty credentials, which disables them in the tap whatever
    ``meltano.yml`` or the environment set; when the tap has the ``vendors`` setting it is
    passed as well.
    """
    tap = env_prefix(plan.extractor)
    env = {
        # Meltano 4.4.1 keeps a tap's catalog in one file per system directory, which runs
        # side by side in one directory overwrite (meltano issue 8763): one each.
        "MELTANO_SYS_DIR_ROOT": str(sys_dir),
        # Plugins are installed once, before the partitions start; concurrent installs into
        # the shared plugin folders would break them.
        "MELTANO_AUTO_INSTALL": "false",
    }
    for vendor, credentials in VENDOR_CREDENTIALS.items():
        if vendor not in partition.vendors:
            env.update({f"{tap}_{name.upper()}": "" for name in credentials})
    if tap_has_vendors_setting:
        env[f"{tap}_VENDORS"] = json.dumps(list(partition.vendors))
    for name, value in partition.settings.items():
        env[f"{tap}_{name.upper()}"] = setting_value(value)
    if partition.excluded_streams:
        env[f"{tap}__SELECT_FILTER"] = json.dumps([f"!{s}" for s in partition.excluded_streams])
    if plan.batch_root:
        # By its leaves: meltano.yml declares batch_config's sub-settings, and Meltano then
        # ignores a whole TAP_SEGMENTS_BATCH_CONFIG (the run would quietly send RECORDs).
        env[f"{tap}_BATCH_CONFIG_ENCODING_FORMAT"] = "jsonl"
        env[f"{tap}_BATCH_CONFIG_ENCODING_COMPRESSION"] = "gzip"
        env[f"{tap}_BATCH_CONFIG_STORAGE_ROOT"] = f"{plan.batch_root}/{partition.key}"
    for name, value in {**plan.env, **partition.env}.items():
        env[name] = value.format(partition=partition.key, slug=partition.slug)
    return env
