"""The project's promises to its users: README settings table, meltano.yml settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import referencing
import yaml
from singer_output import REPO

from tap_segments.tap import TapSegments


def test_readme_settings_table_matches_about_output():
    check = [sys.executable, "scripts/readme_settings.py", "--check"]
    assert subprocess.run(check, cwd=REPO).returncode == 0, "run scripts/readme_settings.py"


def test_meltano_yml_declares_every_setting_with_its_kind():
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    extractor = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-segments")
    declared = {s["name"]: s.get("kind", "string") for s in extractor["settings"]}
    sdk_builtins = ("stream_map", "faker_config", "flattening_", "batch_config")
    for name, schema in TapSegments.config_jsonschema["properties"].items():
        if name.startswith(sdk_builtins):  # the SDK adds these to every tap's schema
            continue
        assert name in declared, f"{name} missing from meltano.yml"
        if schema.get("secret"):
            assert declared[name] == "password", name
        types = schema.get("type", [])
        if "boolean" in types:
            assert declared[name] == "boolean", name
        if "array" in types:
            assert declared[name] == "array", name


# -- plugin definitions (scripts/plugin_definition.py) --------------------------------------

HUB_DEFINITION = REPO / "plugins" / "extractors" / "tap-segments--tap-segments.yml"
#: Meltano Hub's JSON schemas for plugin definitions (the `schemas/` folder of the Hub's
#: repository, meltano/hub): $MELTANO_HUB_SCHEMAS, else shared/meltano-hub/schemas beside
#: the repository.
HUB_SCHEMAS = Path(
    os.environ.get("MELTANO_HUB_SCHEMAS") or REPO.parent / "shared" / "meltano-hub" / "schemas"
)


def test_plugin_definitions_match_about_output():
    check = [sys.executable, "scripts/plugin_definition.py", "--check"]
    done = subprocess.run(check, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_meltano_yml_describes_every_setting_as_the_sdk_template_does():
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    extractor = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-segments")
    assert {"structured-logging", "activate-version", "batch"} <= set(extractor["capabilities"])
    assert extractor["requires_meltano"]
    settings = {s["name"]: s for s in extractor["settings"]}
    assert "emit_activate_version_messages" in settings
    for name, spec in settings.items():
        assert spec["label"] and spec["description"] and spec["kind"], name
    properties = TapSegments.config_jsonschema["properties"]
    for name, schema in properties.items():
        if schema.get("secret"):
            assert settings[name].get("sensitive") is True, name
    # One group per vendor: its credentials (a vendor is enabled when they are all set).
    groups = extractor["settings_group_validation"]
    assert ["indicative_api_key", "indicative_access_token"] in groups
    assert all(name in settings for group in groups for name in group)


def hub_validator(schemas: Path) -> jsonschema.Draft7Validator:
    """A validator for the Hub's extractor definitions; its files $ref each other by path."""
    resources = []
    for path in schemas.rglob("*.schema.json"):
        schema = {**json.loads(path.read_text()), "$id": path.resolve().as_uri()}
        resources.append((schema["$id"], referencing.Resource.from_contents(schema)))
    registry = referencing.Registry().with_resources(resources)
    root = (schemas / "plugin_definitions" / "extractors.schema.json").resolve().as_uri()
    return jsonschema.Draft7Validator(registry.contents(root), registry=registry)


@pytest.mark.skipif(
    not HUB_SCHEMAS.is_dir(),
    reason=f"Meltano Hub's schemas are not at {HUB_SCHEMAS} (set MELTANO_HUB_SCHEMAS)",
)
def test_hub_definition_validates_against_the_hubs_schema():
    validator = hub_validator(HUB_SCHEMAS)
    definition = yaml.safe_load(HUB_DEFINITION.read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(definition)]
    assert not errors, errors
    # The validator does reject what the Hub rejects (so a pass above means something).
    broken = {**definition, "settings": [{"name": "x", "kind": "number"}], "colour": "red"}
    assert len(list(validator.iter_errors(broken))) == 2
