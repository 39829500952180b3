"""Settings, declared once: name, JSON type, default, secret, credential, title, description.

A group of settings is a frozen dataclass whose fields are declared with ``setting(...)``.
The same declaration gives the SDK its ``config_jsonschema`` property (``properties()``)
and the code its validated, defaulted, typed object (``from_config(config)``); nothing
else in the tap reads the raw config or writes a default again. Each vendor declares its
group in ``vendors/<vendor>/settings.py``; ``CommonSettings`` holds the settings every
vendor shares; ``tap.py`` joins them.
"""

from __future__ import annotations

import dataclasses
import typing as t

from singer_sdk import typing as th

from tap_segments.timeutil import parse_timestamp

#: The floor of both poll waits: a poll interval of 0 must not make a tight loop.
MIN_POLL_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """What a setting is, as users see it in ``--about``, meltano.yml and the README."""

    name: str
    jsonschema: th.JSONTypeHelper
    title: str
    description: str
    default: t.Any = None
    secret: bool = False
    #: All of a vendor's credential settings set = the vendor is enabled.
    credential: bool = False
    #: How a config value becomes the field's value (after JSON schema validation).
    convert: t.Callable[[t.Any], t.Any] | None = None
    #: The field's value when the setting is not set and has no default.
    missing: t.Any = None

    def property(self) -> th.Property:
        return th.Property(
            self.name,
            self.jsonschema,
            default=list(self.default) if isinstance(self.default, tuple) else self.default,
            secret=self.secret,
            title=self.title,
            description=self.description,
        )

    def value(self, config: t.Mapping[str, t.Any]) -> t.Any:
        raw = config.get(self.name)
        if raw is None or raw == "":
            raw = self.default
        if raw is None:
            return self.missing
        if self.convert is None:
            return raw
        try:
            return self.convert(raw)
        except (TypeError, ValueError) as exc:
            shown = "" if self.secret else f" {raw!r}"
            raise ValueError(f"{self.name}{shown} {exc}") from None


def setting(
    name: str,
    jsonschema: th.JSONTypeHelper | type[th.JSONTypeHelper],
    *,
    title: str,
    description: str,
    default: t.Any = None,
    secret: bool = False,
    credential: bool = False,
    convert: t.Callable[[t.Any], t.Any] | None = None,
    missing: t.Any = None,
) -> t.Any:
    """Declare a settings-group field (use as the field's default in the dataclass body)."""
    helper = jsonschema() if isinstance(jsonschema, type) else jsonschema
    spec = SettingSpec(
        name, helper, title, description, default, secret, credential or secret, convert, missing
    )
    return dataclasses.field(default=None, metadata={"setting": spec})


def secret(name: str, title: str, description: str) -> t.Any:
    """A credential: a secret string (never shown; the vendor is enabled when all are set)."""
    return setting(name, th.StringType, title=title, description=description, secret=True)


def strings(value: t.Iterable[t.Any]) -> tuple[str, ...]:
    """A list setting as a tuple of strings, without blanks or repeats, in order."""
    if isinstance(value, str):  # one id given where a list was expected
        value = [value]
    return tuple(dict.fromkeys(str(item).strip() for item in value if str(item).strip()))


def id_list(name: str, title: str, description: str) -> t.Any:
    """A list-of-ids setting: a tuple of strings, empty when not set."""
    return setting(
        name,
        th.ArrayType(th.StringType),
        title=title,
        description=description,
        convert=strings,
        missing=(),
    )


def at_least(floor: float) -> t.Callable[[t.Any], float]:
    def convert(value: t.Any) -> float:
        return max(float(value), floor)

    return convert


SettingsT = t.TypeVar("SettingsT", bound="SettingsGroup")


@dataclasses.dataclass(frozen=True)
class SettingsGroup:
    """Base of every settings dataclass."""

    @classmethod
    def specs(cls) -> list[SettingSpec]:
        return [f.metadata["setting"] for f in dataclasses.fields(cls) if "setting" in f.metadata]

    @classmethod
    def properties(cls) -> list[th.Property]:
        return [spec.property() for spec in cls.specs()]

    @classmethod
    def credential_names(cls) -> tuple[str, ...]:
        return tuple(spec.name for spec in cls.specs() if spec.credential)

    @classmethod
    def secret_names(cls) -> tuple[str, ...]:
        return tuple(spec.name for spec in cls.specs() if spec.secret)

    @classmethod
    def from_config(cls: type[SettingsT], config: t.Mapping[str, t.Any]) -> SettingsT:
        values = {
            f.name: f.metadata["setting"].value(config)
            for f in dataclasses.fields(cls)
            if "setting" in f.metadata
        }
        return cls(**values)


def _timestamp(value: t.Any) -> str:
    try:
        parse_timestamp(str(value))
    except ValueError:
        raise ValueError("is not an ISO-8601 date-time (e.g. 2026-01-31T00:00:00Z).") from None
    return str(value)


@dataclasses.dataclass(frozen=True)
class CommonSettings(SettingsGroup):
    """Settings every vendor shares."""

    start_date: str | None = setting(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            "Earliest data for incremental streams (ISO-8601), and the first bookmark of "
            "change-aware exports: an Indicative segment whose lastRun is older is not exported."
        ),
        convert=_timestamp,
    )
    vendors: tuple[str, ...] = setting(
        "vendors",
        th.ArrayType(
            th.StringType(allowed_values=["artisan", "indicative", "kissmetrics", "acoustic"])
        ),
        title="Vendors",
        description=(
            "Limit the run to these vendors (artisan, indicative, kissmetrics, acoustic); "
            "default: every vendor whose credentials are set. For partitioned runs."
        ),
        convert=strings,
        missing=(),
    )
    export_poll_interval_seconds: float = setting(
        "export_poll_interval_seconds",
        th.NumberType(minimum=0),
        title="Export poll interval (seconds)",
        description=(
            "First wait between polls of an export job; it grows on each poll. Values below "
            f"{MIN_POLL_SECONDS:g} are raised to {MIN_POLL_SECONDS:g}."
        ),
        default=2,
        convert=at_least(MIN_POLL_SECONDS),
    )
    export_poll_max_interval_seconds: float = setting(
        "export_poll_max_interval_seconds",
        th.NumberType(minimum=0),
        title="Export poll max interval (seconds)",
        description=(
            "Cap of the growing wait between polls of an export job. Values below "
            f"{MIN_POLL_SECONDS:g} are raised to {MIN_POLL_SECONDS:g}."
        ),
        default=60,
        convert=at_least(MIN_POLL_SECONDS),
    )
    export_timeout_seconds: float = setting(
        "export_timeout_seconds",
        th.NumberType(exclusive_minimum=0),
        title="Export timeout (seconds)",
        description="Give up on one export job after this many seconds since it started.",
        default=14400,
        convert=float,
    )
    file_download_timeout_seconds: float | None = setting(
        "file_download_timeout_seconds",
        th.NumberType(exclusive_minimum=0),
        title="File download timeout (seconds)",
        description=(
            "Give up on reading one result file after this many seconds, however slowly its "
            "bytes keep coming (default: export_timeout_seconds)."
        ),
        convert=float,
    )
    max_concurrent_exports: int = setting(
        "max_concurrent_exports",
        th.IntegerType(minimum=1),
        title="Max concurrent exports",
        description="Export jobs triggered, polled and downloaded at the same time.",
        default=4,
        convert=int,
    )
    request_timeout_seconds: float = setting(
        "request_timeout_seconds",
        th.NumberType(exclusive_minimum=0),
        title="Request timeout (seconds)",
        description="Timeout of each HTTP request, in seconds (fractions allowed).",
        default=300,
        convert=float,
    )
    http_max_tries: int = setting(
        "http_max_tries",
        th.IntegerType(minimum=1),
        title="HTTP max tries",
        description="Tries of one HTTP request on 429, 5xx and connection errors.",
        default=6,
        convert=int,
    )
    http_retry_base_seconds: float = setting(
        "http_retry_base_seconds",
        th.NumberType(exclusive_minimum=0),
        title="HTTP retry base wait (seconds)",
        description=(
            "First wait before retrying a request; doubles on each try, never shorter than the "
            "vendor's Retry-After (capped at one hour)."
        ),
        default=1,
        convert=float,
    )
    s3_endpoint_url: str | None = setting(
        "s3_endpoint_url",
        th.StringType,
        title="S3 endpoint URL",
        description=(
            "Endpoint of S3-compatible storage for `s3://` result files (default: AWS). "
            "Credentials come from the standard AWS chain; needs `pip install tap-segments[s3]`."
        ),
    )

    @property
    def download_timeout(self) -> float:
        return self.file_download_timeout_seconds or self.export_timeout_seconds
