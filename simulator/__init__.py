"""A local stand-in for every vendor the tap reads, for tests, the demo and the benchmark.

``Simulator(SimConfig(...))`` starts one HTTP server on 127.0.0.1 that serves each vendor's
documented endpoints under its own prefix, with its documented auth, deterministic data
of configurable size, export jobs that finish after several polls, downloadable result
files (plain and gzip), and faults tests switch on. Nothing here ever calls a real vendor.

    with Simulator(SimConfig(seed=1)) as sim:
        config = sim.tap_config()          # tap settings: base URLs and fake credentials
        sim.faults.add("status", vendor="indicative", path="/list", status=429, retry_after="1")
        sim.truth()                        # exact record counts the tap should emit, per stream
        sim.requests                       # every request the server saw
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field

from simulator.indicative import IndicativeApp, IndicativeConfig
from simulator.server import LoggedRequest, SimServer, VendorApp


@dataclass
class SimConfig:
    """Sizes and behaviours of every simulated vendor; each vendor has its own section."""

    seed: int = 1
    indicative: IndicativeConfig = field(default_factory=IndicativeConfig)


#: The vendors the simulator plays: name -> factory(seed, SimConfig) -> VendorApp.
VENDOR_APPS: dict[str, t.Callable[[SimConfig], VendorApp]] = {
    "indicative": lambda config: IndicativeApp(config.seed, config.indicative),
}


class Simulator:
    """Starts and stops the simulated vendors; exposes their truth, faults and request log."""

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.config = config or SimConfig()
        self.apps: dict[str, VendorApp] = {
            name: factory(self.config) for name, factory in VENDOR_APPS.items()
        }
        self.server = SimServer((host, port), list(self.apps.values()))
        self.server.truth = self.truth
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> t.Any:
        apps = self.__dict__.get("apps", {})
        if name in apps:
            return apps[name]
        raise AttributeError(name)

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{self.apps[vendor].prefix}"

    def tap_config(self) -> dict[str, t.Any]:
        config: dict[str, t.Any] = {}
        for name, app in self.apps.items():
            config.update(app.tap_config(self.base_url(name)))
        return config

    def truth(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for app in self.apps.values():
            counts.update(app.truth())
        return counts

    @property
    def faults(self):  # type: ignore[no-untyped-def]
        return self.server.faults

    @property
    def requests(self) -> list[LoggedRequest]:
        with self.server.log_lock:
            return list(self.server.log)

    def requests_by_method(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.requests:
            counts[entry.method] = counts.get(entry.method, 0) + 1
        return counts


__all__ = ["VENDOR_APPS", "SimConfig", "Simulator"]
