"""Imports the SDK makes that a tap run does not need, deferred until something uses them.

``import singer_sdk`` imports, for every plugin, what its targets and its batch storage use:
``joblib`` (``singer_sdk.target_base``: targets' parallel sinks) and ``upath`` with
``fsspec`` and ``asyncio`` behind it (``singer_sdk.helpers._batch``: where BATCH files go).
Together they are a good third of the SDK's import time, paid by every run, while a tap
never drains sinks and needs batch storage only with ``batch_config``.

``install()``, called when the ``tap_segments`` package is imported (before the SDK),
puts a stand-in for each of those modules in ``sys.modules``. The names the SDK imports
from them (``from joblib import Parallel``, ``from upath import UPath``) are stand-ins
too: the first call of one, or the first look at any other attribute of the module, imports
the real module (which then replaces the stand-in in ``sys.modules``) and hands that on.
Whoever imports such a module after that gets the real one. A module already imported, or
not installed, is left alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import typing as t

#: Modules deferred, and the names the SDK imports from them at its own import.
DEFERRED: dict[str, tuple[str, ...]] = {
    "joblib": ("Parallel", "delayed", "parallel_config"),
    "upath": ("UPath",),
}


def _real(module: str) -> types.ModuleType:
    """The real module, imported now if only its stand-in is there."""
    present = sys.modules.get(module)
    if present is not None and not isinstance(present, _StandIn):
        return present
    sys.modules.pop(module, None)
    return importlib.import_module(module)


class _DeferredName:
    """A name imported from a deferred module: the real object on first use."""

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name

    def _target(self) -> t.Any:
        return getattr(_real(self._module), self._name)

    def __call__(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attribute: str) -> t.Any:
        return getattr(self._target(), attribute)

    def __repr__(self) -> str:
        return f"<deferred {self._module}.{self._name}>"


class _StandIn(types.ModuleType):
    """A deferred module until something looks into it."""

    def __init__(self, name: str, names: tuple[str, ...], path: list[str] | None) -> None:
        super().__init__(name)
        self.__deferred_names = names
        if path is not None:
            # A package's ``__path__`` (``from X import Y`` asks for it, and submodules are
            # found through it) without importing it.
            self.__path__ = path

    def __getattr__(self, attribute: str) -> t.Any:
        if attribute in self.__deferred_names:
            return _DeferredName(self.__name__, attribute)
        return getattr(_real(self.__name__), attribute)


def install() -> None:
    """Stand-ins for the deferred modules not imported yet (and installed)."""
    for module, names in DEFERRED.items():
        if module in sys.modules:
            continue
        spec = importlib.util.find_spec(module)
        if spec is not None:
            path = spec.submodule_search_locations
            sys.modules[module] = _StandIn(module, names, list(path) if path else None)
