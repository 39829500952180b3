"""tap-segments' Meltano plugin definitions, generated from ``tap-segments --about --format json``.

    python scripts/plugin_definition.py          # rewrite both outputs
    python scripts/plugin_definition.py --check  # exit 1 if either is out of date

One reading of the tap's own description gives two outputs, so neither drifts from the tap:

- meltano.yml: the tap-segments extractor, between the ``# plugin-definition:`` markers;
- plugins/extractors/tap-segments--<VARIANT>.yml: the definition for Meltano Hub (or for
  another project: ``meltano add extractor tap-segments --from-ref <that file>``), in the
  Hub's shape (keys and settings sorted by name, as the Hub's generated definitions are).

Each setting gets a ``label`` (its JSON-schema ``title``, else one made from its name), a
``description``, a ``kind``, ``sensitive: true`` for secrets and its default as ``value``.
Settings of the SDK's object settings that have a fixed shape (``batch_config``,
``faker_config``) are declared one leaf at a time (``batch_config.encoding.format``), as on
the Hub. ``settings_group_validation`` has one group per vendor: the settings that enable it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MELTANO_YML = ROOT / "meltano.yml"
VARIANT = "tap-segments"
HUB_DEFINITION = ROOT / "plugins" / "extractors" / f"tap-segments--{VARIANT}.yml"
START, END = "  # plugin-definition:start\n", "  # plugin-definition:end\n"

#: meltano 4.0 is the first to parse the SDK's structured logs (the `structured-logging`
#: capability) and honour a plugin's own `python`.
REQUIRES_MELTANO = ">=4.0"

#: Words a label spells in capitals or otherwise not title-cased.
WORDS = {"api": "API", "id": "ID", "ids": "IDs", "url": "URL", "http": "HTTP", "iso": "ISO"}

#: Object settings whose keys are the user's own (stream names, map values): kept whole.
OPEN_OBJECTS = {"stream_maps", "stream_map_config"}


def about() -> dict[str, t.Any]:
    """The tap's own description of itself."""
    command = [sys.executable, "-m", "tap_segments", "--about", "--format", "json"]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return t.cast(dict, json.loads(output.stdout))


def sdk_settings_not_advertised(capabilities: list[str]) -> dict[str, t.Any]:
    """Settings the SDK reads for a capability but does not add to a tap's --about output.

    singer-sdk 0.54 honours ``emit_activate_version_messages`` (streams/core.py) and defines
    its schema (helpers/capabilities.py), but adds it to no tap's settings.
    """
    if "activate-version" not in capabilities:
        return {}
    from singer_sdk.helpers.capabilities import EMIT_ACTIVATE_VERSION_CONFIG

    return t.cast(dict, EMIT_ACTIVATE_VERSION_CONFIG["properties"])


def label_from_name(name: str) -> str:
    words = [part for part in re.split(r"[_.]+", name) if part and part != "config"]
    words = [word for i, word in enumerate(words) if not i or word != words[i - 1]]
    return " ".join(WORDS.get(word, word.capitalize()) for word in words)


def types_of(schema: dict[str, t.Any]) -> set[str]:
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def kind_of(schema: dict[str, t.Any]) -> str:
    types = types_of(schema) - {"null"}
    if schema.get("secret"):
        return "password"
    if schema.get("format") == "date-time":
        return "date_iso8601"
    if "enum" in schema and types <= {"string"}:
        return "options"
    for json_type, kind in (("boolean", "boolean"), ("array", "array"), ("object", "object")):
        if json_type in types:
            return kind
    # `number` too: with meltano 4.4.1's `decimal` kind a value from the environment becomes
    # a Decimal that meltano cannot write into the tap's config ("Object of type Decimal is
    # not JSON serializable"; checked again with 4.4.1). So through meltano these settings
    # take whole numbers; the tap itself (tap-segments --config FILE) accepts fractions.
    if types & {"integer", "number"}:
        return "integer"
    return "string"


def setting(name: str, schema: dict[str, t.Any], *, nested: bool) -> dict[str, t.Any]:
    # A leaf of an SDK object setting is labelled by its whole path (its own title, such as
    # "Format", says too little); any other setting by its title when it has one.
    label = label_from_name(name) if nested else schema.get("title") or label_from_name(name)
    entry: dict[str, t.Any] = {
        "name": name,
        "label": label,
        "description": " ".join(str(schema.get("description", "")).split()),
        "kind": kind_of(schema),
    }
    if schema.get("secret"):
        entry["sensitive"] = True
    if entry["kind"] == "options":
        entry["options"] = [{"label": str(v), "value": str(v)} for v in schema["enum"]]
    if schema.get("default") is not None:
        entry["value"] = schema["default"]
    return entry


def settings(properties: dict[str, t.Any], prefix: str = "") -> list[dict[str, t.Any]]:
    """One declared setting per leaf; objects of fixed shape are walked into."""
    declared = []
    for name, schema in properties.items():
        full_name = f"{prefix}{name}"
        nested = schema.get("properties")
        if nested and "object" in types_of(schema) and full_name not in OPEN_OBJECTS:
            declared += settings(nested, f"{full_name}.")
            continue
        declared.append(setting(full_name, schema, nested=bool(prefix)))
    return declared


def vendor_groups() -> list[list[str]]:
    """Per vendor, the settings that together enable it (any one group is enough)."""
    from tap_segments.vendors import VENDORS

    return [list(vendor.credential_settings) for vendor in VENDORS]


def definitions() -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """(the meltano.yml extractor, the Hub definition), from one --about reading."""
    info = about()
    capabilities = sorted(info["capabilities"])
    properties = {**info["settings"]["properties"], **sdk_settings_not_advertised(capabilities)}
    declared = settings(properties)
    project = {
        "name": info["name"],
        "namespace": "tap_segments",
        # s3:// result files and BATCH roots; BATCH files in the parquet encoding
        "pip_url": "-e .[s3,parquet]",
        "executable": info["name"],
        "requires_meltano": REQUIRES_MELTANO,
        "capabilities": capabilities,
        "settings_group_validation": vendor_groups(),
        "settings": declared,
    }
    hub = {
        "capabilities": capabilities,
        "description": info["description"],
        "executable": info["name"],
        "keywords": ["meltano_sdk", "marketing", "segments", "api"],
        "label": "Segments (Artisan, Indicative, Kissmetrics, Acoustic Exchange)",
        "log_parser": "singer-sdk",
        "maintenance_status": "active",
        "name": info["name"],
        "namespace": "tap_segments",
        "pip_url": info["name"],
        "quality": "unknown",
        "settings": sorted(declared, key=lambda s: s["name"]),
        "settings_group_validation": vendor_groups(),
        "supported_python_versions": list(info["supported_python_versions"]),
        "variant": VARIANT,
    }
    return project, hub


def dump(value: t.Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, width=100, allow_unicode=True)


def render_meltano_yml(text: str, extractor: dict[str, t.Any]) -> str:
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    block = "".join(f"  {line}\n" for line in dump([extractor]).splitlines())
    return f"{before}{START}{block}{END}{after}"


def render_hub(hub: dict[str, t.Any]) -> str:
    header = (
        "# Generated by scripts/plugin_definition.py from `tap-segments --about --format json`;\n"
        "# checked against Meltano Hub's schema for extractors by tests/test_project.py.\n"
    )
    return header + dump(hub)


def main() -> int:
    project, hub = definitions()
    outputs = {
        MELTANO_YML: render_meltano_yml(MELTANO_YML.read_text(), project),
        HUB_DEFINITION: render_hub(hub),
    }
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    if "--check" in sys.argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run scripts/plugin_definition.py")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(outputs[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
