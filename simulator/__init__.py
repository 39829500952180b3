"""A local stand-in for every vendor the tap reads, for tests, the demo and the benchmark.

``Simulator(SimConfig(...))`` starts one HTTP server on 127.0.0.1 that serves each vendor's
documented endpoints under its own prefix, with its documented auth, deterministic data
of configurable size, export jobs that finish after several polls, and faults tests switch
on; and two S3-like storage origins (``simulator.storage``, other ports, so other origins)
that serve the result files Artisan and Indicative point to, through presigned URLs.
Nothing here ever calls a real vendor.

    with Simulator(SimConfig(seed=1)) as sim:
        config = sim.tap_config()          # tap settings: base URLs and fake credentials
        sim.faults.add("status", vendor="indicative", path="/list", status=429, retry_after="1")
        sim.truth()                        # exact record counts the tap should emit, per stream
        sim.requests                       # every request the API server saw
        sim.storage.requests               # every request the storage origins saw, all headers
        sim.storage.credential_leaks()     # those that carried a vendor credential

``SimConfig.all_variants()`` switches on every documented variant of every vendor at once.
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field

from simulator.acoustic import AcousticApp, AcousticConfig
from simulator.artisan import ArtisanApp, ArtisanConfig
from simulator.indicative import IndicativeApp, IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig, kissmetrics_apps
from simulator.server import LoggedRequest, SimServer, VendorApp
from simulator.storage import ObjectStorage, StorageConfig, StorageServer

#: The tap settings that hold credentials: what must never reach the storage origins.
CREDENTIAL_SETTINGS = (
    "artisan_public_api_key",
    "artisan_secret_api_key",
    "indicative_api_key",
    "indicative_access_token",
    "kissmetrics_api_token",
    "acoustic_auth_key",
)


@dataclass
class SimConfig:
    """Sizes and behaviours of every simulated vendor; each vendor has its own section."""

    seed: int = 1
    acoustic: AcousticConfig = field(default_factory=AcousticConfig)
    artisan: ArtisanConfig = field(default_factory=ArtisanConfig)
    indicative: IndicativeConfig = field(default_factory=IndicativeConfig)
    kissmetrics: KissmetricsConfig = field(default_factory=KissmetricsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)

    @classmethod
    def all_variants(cls, seed: int = 1, *, s3_endpoint_url: str | None = None) -> SimConfig:
        """Every documented variant of every vendor switched on at once: where the docs
        disagree, the reading a tap is least likely to expect (the tap sends ISO dates: the
        run accepts only Unix seconds; it filters with ``endpointId``: the server honours
        ``endpointID``), and every result file reached through a redirect to the second
        storage origin. With ``s3_endpoint_url``, Indicative files are ``s3://`` URIs there.
        ``Simulator.truth()`` stays what a correct tap emits."""
        return cls(
            seed=seed,
            acoustic=AcousticConfig(
                jobs_per_category=12,  # every documented status, two READY_FOR_DOWNLOAD jobs
                endpoint_param="endpointID",
                endpoint_id=7,
                other_destination_jobs=True,
                dates="iso",
                field_set="list_example",
                all_statuses=True,
            ),
            artisan=ArtisanConfig(
                status_words="mixed",
                jobs_shape="gem",
                status_jobs_shape="gem",
                job_shape="alternate",
                url_lag_polls=2,
                profiles_shape="gem",
            ),
            indicative=IndicativeConfig(
                throttle_polls=1,
                retry_after_form="date",
                date_skew_seconds=600,
                export_fields="example",
                filename_style="s3" if s3_endpoint_url else "presigned",
                s3_endpoint_url=s3_endpoint_url,
            ),
            kissmetrics=KissmetricsConfig(
                run_dates="unix",
                rejected_date_status=422,
                next_links=False,
                run_link_host="core",
                require_content_type=True,
            ),
            storage=StorageConfig(redirect="other"),
        )


#: The vendors the simulator plays: name -> factory(SimConfig) -> the vendor's app(s); a
#: vendor with several hosts (Kissmetrics) has one app per host, the first one its main app.
VENDOR_APPS: dict[str, t.Callable[[SimConfig], VendorApp | list[VendorApp]]] = {
    "acoustic": lambda config: AcousticApp(config.seed, config.acoustic),
    "artisan": lambda config: ArtisanApp(config.seed, config.artisan),
    "indicative": lambda config: IndicativeApp(config.seed, config.indicative),
    "kissmetrics": lambda config: kissmetrics_apps(config.seed, config.kissmetrics),
}


class Simulator:
    """Starts and stops the simulated vendors; exposes their truth, faults and request log."""

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.config = config or SimConfig()
        mounts: list[VendorApp] = []
        self.apps: dict[str, VendorApp] = {}
        for name, factory in VENDOR_APPS.items():
            made = factory(self.config)
            vendor_apps = made if isinstance(made, list) else [made]
            self.apps[name] = vendor_apps[0]
            mounts.extend(vendor_apps)
        self.server = SimServer((host, port), mounts)
        self.server.truth = self.truth
        self.storage = ObjectStorage(self.config.storage, self.server.faults)
        self.storage.default_secrets = self.credentials
        # Two origins: results are served from the first; redirects may lead to the second.
        self.storage_servers = [StorageServer((host, 0), self.storage) for _ in range(2)]
        self.server.controls["storage"] = self.storage.control
        for app in mounts:
            app.storage = self.storage
        self._threads: list[threading.Thread] = []

    def __getattr__(self, name: str) -> t.Any:
        apps = self.__dict__.get("apps", {})
        if name in apps:
            return apps[name]
        raise AttributeError(name)

    def start(self) -> Simulator:
        for server in (self.server, *self.storage_servers):
            # A short poll interval: stopping waits for it, three servers in a row.
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self.server, *self.storage_servers):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def storage_url(self) -> str:
        """The storage origin result files are served from (the second one: ``storage.origins``)."""
        return self.storage.url

    def credentials(self) -> list[str]:
        """Every credential value the simulated vendors accept (and the tap is given)."""
        config = self.tap_config()
        return [str(config[name]) for name in CREDENTIAL_SETTINGS if config.get(name)]

    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{self.apps[vendor].prefix}"

    def tap_config(self) -> dict[str, t.Any]:
        config: dict[str, t.Any] = {}
        for app in self.server.apps.values():
            config.update(app.tap_config(f"{self.url}/{app.prefix}"))
        return config

    def truth(self, *, rerun: bool = False) -> dict[str, int]:
        counts: dict[str, int] = {}
        for app in self.server.apps.values():
            counts.update(app.truth(rerun=rerun))
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


__all__ = ["CREDENTIAL_SETTINGS", "VENDOR_APPS", "SimConfig", "Simulator", "StorageConfig"]
