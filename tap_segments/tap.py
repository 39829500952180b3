"""The tap: the vendors' settings joined, one client per enabled vendor, and its streams.

Everything vendor-specific lives in ``tap_segments/vendors/<vendor>/`` (settings, client,
streams); the async-export machinery shared by all of them lives in
``tap_segments/exports/``. ``cli()`` is the ``tap-segments`` command: the SDK's CLI, with
every way a run can end (an error, bad state, SIGTERM, a target that stops reading) said in
one line that names the vendor and what failed.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import signal
import sys
import typing as t

import click
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.helpers.capabilities import EMIT_ACTIVATE_VERSION_CONFIG
from singer_sdk.tap_base import CliTestOptionValue

from tap_segments import redaction
from tap_segments.batches import BATCH_SIZE_SETTING
from tap_segments.errors import SettingsError, StateError, TapSegmentsError, Terminated
from tap_segments.exports.streams import AsyncExportStream
from tap_segments.output import TapMessageWriter
from tap_segments.sdk_adapter import AdaptedTap, ConfigInput
from tap_segments.settings import CommonSettings
from tap_segments.vendors import VENDORS, Vendor, enabled_vendors

if t.TYPE_CHECKING:
    from tap_segments.vendors.client import VendorClient


#: The tap cannot see its target: with batch_config set, say which targets read BATCH.
BATCH_WARNING = (
    "batch_config is set: records go out as BATCH messages (files under "
    "batch_config.storage.root), which only some targets read. Measured: "
    "meltanolabs-target-postgres loads them; target-duckdb 0.8.0 and target-jsonl 0.1.4 stop "
    "on the first one. Remove batch_config for a target that does not take BATCH."
)


def settings_schema() -> dict[str, t.Any]:
    """The config schema: the shared settings, then each vendor's, declared once each."""
    properties = CommonSettings.properties()
    for vendor in VENDORS:
        properties += vendor.settings.properties()
    return th.PropertiesList(*properties).to_dict()


def check_state(state: t.Any, where: str) -> dict[str, t.Any]:
    """A state the tap can resume from, or ``StateError`` saying what is wrong with it."""
    if not isinstance(state, dict):
        raise StateError(f"The {where} is a JSON {type(state).__name__}, not an object.")
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise StateError(
            f"The {where} has 'bookmarks' as {type(bookmarks).__name__}, not an object."
        )
    for stream, value in bookmarks.items():
        if not isinstance(value, dict):
            raise StateError(
                f"The {where} has the bookmark of stream {stream} as {type(value).__name__}, "
                "not an object; fix or remove it and run again."
            )
    return state


def read_state(text: str, where: str) -> dict[str, t.Any]:
    try:
        state = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise StateError(
            f"The {where} is not JSON ({exc}); pass the last STATE the tap printed."
        ) from None
    return check_state(state, where)


class TapSegments(AdaptedTap):
    """Singer tap for Artisan, Indicative, Kissmetrics and Acoustic Exchange."""

    name = "tap-segments"
    #: msgspec encoding; RECORDs buffered until the next STATE/SCHEMA (see tap_segments.output).
    message_writer_class = TapMessageWriter
    config_jsonschema = settings_schema()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        state = kwargs.get("state")
        if isinstance(state, dict):
            check_state(state, "state")
        self._clients: dict[str, VendorClient] | None = None
        self._common: CommonSettings | None = None
        super().__init__(*args, **kwargs)
        redaction.install(str(self.config[n]) for n in self.secret_names() if self.config.get(n))
        if self.config.get("batch_config"):
            self.logger.warning(BATCH_WARNING)

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        super().append_builtin_config(config_jsonschema)
        for name, spec in EMIT_ACTIVATE_VERSION_CONFIG["properties"].items():
            config_jsonschema["properties"].setdefault(name, spec)
        batch = config_jsonschema["properties"].get("batch_config")
        if isinstance(batch, dict):  # a copy: the SDK's own schema stays as it is
            batch = config_jsonschema["properties"]["batch_config"] = copy.deepcopy(batch)
            batch.setdefault("properties", {}).update(BATCH_SIZE_SETTING)

    @classmethod
    def secret_names(cls) -> list[str]:
        return [name for v in VENDORS for name in v.settings.secret_names()]

    # -- settings and clients --------------------------------------------------------------

    @property
    def common(self) -> CommonSettings:
        if self._common is None:
            try:
                self._common = CommonSettings.from_config(self.config)
            except ValueError as exc:
                raise SettingsError(f"Invalid setting: {exc}") from None
        return self._common

    def vendors(self) -> list[Vendor]:
        """The vendors of this run: credentials set, and listed in ``vendors`` if that is set."""
        only = self.common.vendors
        vendors = enabled_vendors(self.config, only)
        unconfigured = [v for v in VENDORS if v.name in only and v not in vendors]
        if unconfigured:
            raise SettingsError(
                "tap-segments: the setting vendors lists "
                + "; ".join(
                    f"{v.name} (set {', '.join(v.credential_settings)})" for v in unconfigured
                )
                + ", whose credentials are not set."
            )
        if not vendors:
            hints = "; ".join(f"{v.label}: {', '.join(v.credential_settings)}" for v in VENDORS)
            raise SettingsError(
                f"No vendor is configured. Set the credentials of at least one vendor ({hints})."
            )
        return vendors

    def clients(self) -> dict[str, VendorClient]:
        """One client per vendor of the run, shared by that vendor's streams."""
        if self._clients is None:
            common = self.common
            clients = {}
            for vendor in self.vendors():
                try:
                    clients[vendor.name] = vendor.make_client(self.config, common, self.logger)
                except ValueError as exc:
                    raise SettingsError(f"{vendor.label}: {exc}") from None
            self._clients = clients
        return self._clients

    def discover_streams(self) -> list[Stream]:
        """The streams of every vendor of the run, each holding its vendor's client."""
        clients = self.clients()
        return [
            stream_class(tap=self, api=clients[vendor.name])
            for vendor in self.vendors()
            for stream_class in vendor.streams
        ]

    def stop(self, reason: BaseException) -> None:
        """The run is ending early: exports whose trigger was sent reach the state, and on a
        signal the whole state is written once more (a target that stopped reading gets
        nothing more)."""
        try:
            for stream in self.streams.values():
                if isinstance(stream, AsyncExportStream):
                    stream.stop_exports()
            if isinstance(reason, Terminated):
                self.write_state_now()
        except BrokenPipeError:
            pass

    # -- --test ----------------------------------------------------------------------------

    def check_connections(self) -> bool:
        """One cheap request per vendor of the run; log which vendor failed and why."""
        healthy = True
        for client in self.clients().values():
            try:
                asked = client.check()
            except Exception as exc:  # report every vendor, then fail
                healthy = False
                label = client.vendor_label
                reason = str(exc) if str(exc).startswith(label) else f"{label}: {exc}"
                self.logger.error("Connection test failed: %s", reason)
            else:
                self.logger.info("%s: connection test passed (%s).", client.vendor_label, asked)
        return healthy

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test``: check connectivity per vendor instead of syncing a record per stream.

        The SDK's default would sync one record of every stream, which here means triggering
        exports at the vendor: too costly for a connectivity check.
        """
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        config: ConfigInput = ctx.params.get("config", ConfigInput())
        tap = cls(config=config.config, parse_env_config=config.parse_env, validate_config=True)
        ctx.exit(0 if tap.check_connections() else 1)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: ConfigInput | None = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """The SDK's, reading the state file itself so that a bad one is one clear line."""
        super(Tap, cls).invoke(about=about, about_format=about_format)  # --about
        cls.print_version(print_fn=cls.logger.info)
        config = config or ConfigInput()
        where = f"state file {getattr(state, 'name', 'given')}"
        tap = cls(
            config=config.config,
            state=None if state is None else read_state(state.read(), where),
            catalog=None if catalog is None else json.loads(catalog.read()),
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        try:
            tap.sync_all()
        except BaseException as exc:
            tap.stop(exc)
            if isinstance(exc, BrokenPipeError):  # said here: click would end it silently
                _stdout_gone()
                cls.logger.error(TARGET_GONE)
                raise SystemExit(1) from None
            raise


TARGET_GONE = (
    "tap-segments: the target stopped reading (broken pipe); the run ends here. The last "
    "STATE the target received is where a restart resumes."
)


def _stdout_gone() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def cli() -> None:
    """The ``tap-segments`` command: the SDK's CLI, every ending said in one line.

    Errors the tap raises on purpose name the vendor and the endpoint, file, setting or
    state; API errors left after the retries name the endpoint. SIGTERM (and SIGINT) end
    the run with exit 143 (130) after the state is written; a target that stops reading
    ends it at once. Anything unexpected is one ERROR line too, its traceback logged at
    DEBUG level.
    """
    logger = logging.getLogger(TapSegments.name)
    try:
        TapSegments.cli()
    except (TapSegmentsError, FatalAPIError, RetriableAPIError) as exc:
        logger.error("%s", redaction.scrub(str(exc)))
        sys.exit(1)
    except ConfigValidationError as exc:
        logger.error("tap-segments: invalid settings: %s", "; ".join(exc.errors) or exc)
        sys.exit(1)
    except Terminated as exc:
        signum = exc.args[0] if exc.args else signal.SIGTERM
        logger.error(
            "tap-segments: stopped by %s; the last STATE printed is where a restart resumes "
            "(exports already triggered are polled, not triggered again).",
            signal.Signals(signum).name,
        )
        sys.exit(128 + signum)
    except BrokenPipeError:
        _stdout_gone()
        logger.error(TARGET_GONE)
        sys.exit(1)
    except Exception as exc:
        logger.error(
            "tap-segments: unexpected %s: %s", exc.__class__.__name__, redaction.scrub(str(exc))
        )
        logger.debug("Traceback of the unexpected error", exc_info=True)
        sys.exit(1)


if __name__ == "__main__":
    cli()

__all__: t.Sequence[str] = ["TapSegments", "cli"]
