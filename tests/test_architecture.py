"""The layout's promises: imports only run down the layers; the SDK's private API in one place.

Layers, lowest first. A module may import modules of its own layer or of lower ones only
(``if TYPE_CHECKING:`` imports, which never run, are exempt). The registry
``tap_segments/vendors/__init__.py`` is a top-layer module that imports each vendor package.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from singer_sdk import Stream, Tap

from tap_segments import sdk_adapter

PACKAGE = Path(__file__).resolve().parents[1] / "tap_segments"

#: (layer, pattern of module names), lowest first.
LAYERS: list[tuple[int, str]] = [
    (0, r"tap_segments\.(timeutil|rows|deferred)"),
    (1, r"tap_segments\.(errors|redaction|settings)"),
    (2, r"tap_segments\.http"),
    (3, r"tap_segments\.exports(\.(readers|download|state|chunks))?"),
    (3, r"tap_segments\.batchfiles"),
    (4, r"tap_segments\.exports\.workers"),
    (4, r"tap_segments\.exports\.engine"),
    (5, r"tap_segments\.sdk_adapter"),
    (6, r"tap_segments\.(output|batches)"),
    (7, r"tap_segments\.streams"),
    (8, r"tap_segments\.exports\.streams"),
    (9, r"tap_segments\.vendors\.client"),
    (10, r"tap_segments\.vendors\.\w+\.(settings|windows)"),
    (11, r"tap_segments\.vendors\.\w+\.api"),
    (12, r"tap_segments\.vendors\.\w+\.streams"),
    (13, r"tap_segments\.vendors(\.\w+)?"),  # the registry and each vendor's package
    (14, r"tap_segments\.tap"),
    (15, r"tap_segments(\.__main__)?"),
]


MODULES = sorted(PACKAGE.rglob("*.py"))


def layer_of(module: str) -> int:
    for layer, pattern in LAYERS:
        if re.fullmatch(pattern, module):
            return layer
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.Module) -> list[str]:
    """Modules of the tap imported when the module runs (not under ``TYPE_CHECKING``)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for child in ast.walk(node)}
    names = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # ``from tap_segments import redaction`` is a module
                submodule = f"{node.module}.{alias.name}"
                is_module = any(module_name(p) == submodule for p in MODULES)
                names.append(submodule if is_module else node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n == "tap_segments" or n.startswith("tap_segments.")]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_run_down_the_layers(path: Path):
    module = module_name(path)
    own = layer_of(module)
    upward = [
        name
        for name in runtime_imports(ast.parse(path.read_text()))
        if layer_of(name) > own
        and not (module == "tap_segments.vendors" and name.startswith(module))
    ]
    assert not upward, f"{module} (layer {own}) imports a higher layer: {upward}"


def test_the_lowest_layer_imports_nothing_of_the_tap():
    for path in MODULES:
        if layer_of(module_name(path)) == 0:
            assert runtime_imports(ast.parse(path.read_text())) == [], path


def test_only_the_adapter_touches_the_sdks_private_names():
    sdk_private = {
        *sdk_adapter.PRIVATE_METHODS,
        *sdk_adapter.PRIVATE_ATTRIBUTES,
        *sdk_adapter.PRIVATE_TAP_METHODS,
        *sdk_adapter.PRIVATE_TAP_ATTRIBUTES,
    }
    for path in MODULES:
        if path.name == "sdk_adapter.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("singer_sdk"):
                private = [p for p in node.module.split(".") if p.startswith("_")]  # type: ignore[union-attr]
                private += [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports private SDK names: {private}"
            used = getattr(node, "attr", None) or getattr(node, "name", None)
            if isinstance(node, (ast.Attribute, ast.FunctionDef)) and used in sdk_private:
                raise AssertionError(f"{path.name}:{node.lineno} touches the SDK's {used}")


@pytest.mark.parametrize(("name", "params"), sorted(sdk_adapter.PRIVATE_METHODS.items()))
def test_sdk_private_stream_methods_are_as_the_adapter_expects(name, params):
    """Fails loudly when an SDK upgrade renames or reshapes a private method we override."""
    method = getattr(Stream, name, None)
    assert method is not None, f"singer_sdk.Stream.{name} is gone: update tap_segments/sdk_adapter"
    assert tuple(inspect.signature(method).parameters) == params, name


@pytest.mark.parametrize(("name", "params"), sorted(sdk_adapter.PRIVATE_TAP_METHODS.items()))
def test_sdk_private_tap_methods_are_as_the_adapter_expects(name, params):
    method = getattr(Tap, name, None)
    assert method is not None, f"singer_sdk.Tap.{name} is gone: update tap_segments/sdk_adapter"
    assert tuple(inspect.signature(method).parameters) == params, name


def test_sdk_private_attributes_exist_on_a_live_tap_and_stream():
    from tap_segments.tap import TapSegments

    tap = TapSegments(
        config={"indicative_api_key": "k", "indicative_access_token": "t"}, validate_config=False
    )
    stream = next(iter(tap.streams.values()))
    for name in sdk_adapter.PRIVATE_ATTRIBUTES:
        assert hasattr(stream, name), f"Stream instances lost {name}: update sdk_adapter"
    for name in sdk_adapter.PRIVATE_TAP_ATTRIBUTES:
        assert hasattr(tap, name), f"Tap instances lost {name}: update sdk_adapter"
