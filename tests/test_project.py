"""The project's promises to its users: README settings table, meltano.yml settings."""

from __future__ import annotations

import subprocess
import sys

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
