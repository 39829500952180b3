"""The tap: its settings schema and the list of streams of every enabled vendor.

Everything vendor-specific lives in ``tap_segments/vendors/<vendor>/``; the async-export
machinery shared by all of them lives in ``tap_segments/exports/``.
"""

from __future__ import annotations

import logging
import sys
import typing as t

import click
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.tap_base import CliTestOptionValue

from tap_segments import redaction
from tap_segments.client import VendorStream
from tap_segments.exports.engine import parse_timestamp
from tap_segments.output import TapMessageWriter
from tap_segments.vendors import VENDORS, enabled_vendors

StringList = th.ArrayType(th.StringType)
#: The job categories the Acoustic Exchange doc names.
ACOUSTIC_JOB_CATEGORIES = ("SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB")


def _secret(name: str, description: str) -> th.Property:
    return th.Property(name, th.StringType, secret=True, description=description)


class TapSegments(Tap):
    """Singer tap for Artisan, Indicative, Kissmetrics and Acoustic Exchange."""

    name = "tap-segments"
    #: msgspec encoding; RECORDs buffered until the next STATE/SCHEMA (see tap_segments.output).
    message_writer_class = TapMessageWriter

    config_jsonschema = th.PropertiesList(
        # --- shared ---------------------------------------------------------------
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Earliest data for incremental streams (ISO-8601).",
        ),
        th.Property(
            "export_poll_interval_seconds",
            th.NumberType(minimum=0),
            default=2,
            description="First wait between polls of an export job; it grows on each poll.",
        ),
        th.Property(
            "export_poll_max_interval_seconds",
            th.NumberType(minimum=0),
            default=60,
            description="Cap of the growing wait between polls of an export job.",
        ),
        th.Property(
            "export_timeout_seconds",
            th.NumberType(exclusive_minimum=0),
            default=14400,
            description="Give up on one export job after this many seconds since it started.",
        ),
        th.Property(
            "max_concurrent_exports",
            th.IntegerType(minimum=1),
            default=4,
            description="Export jobs triggered, polled and downloaded at the same time.",
        ),
        th.Property(
            "request_timeout_seconds",
            th.NumberType(exclusive_minimum=0),
            default=300,
            description="Timeout of each HTTP request, in seconds.",
        ),
        th.Property(
            "http_max_tries",
            th.IntegerType(minimum=1),
            default=6,
            description="Tries of one HTTP request on 429, 5xx and connection errors.",
        ),
        th.Property(
            "http_retry_base_seconds",
            th.NumberType(exclusive_minimum=0),
            default=1,
            description=(
                "First wait before retrying a request; doubles on each try, never shorter "
                "than the vendor's Retry-After."
            ),
        ),
        # --- Artisan --------------------------------------------------------------
        th.Property(
            "artisan_base_url",
            th.StringType,
            default="https://artisantools.com",
            description="Artisan API base URL.",
        ),
        _secret("artisan_public_api_key", "Artisan public API key (header `public-api-key`)."),
        _secret(
            "artisan_secret_api_key",
            'Artisan secret API key (header `Authorization: Token token="..."`).',
        ),
        th.Property("artisan_app_ids", StringList, description="Limit to these Artisan apps."),
        th.Property(
            "artisan_profile_ids",
            StringList,
            description="Artisan (device) IDs whose profiles are fetched directly.",
        ),
        th.Property(
            "artisan_shared_user_ids",
            StringList,
            description="Shared User IDs whose profiles are fetched directly (`source=custom`).",
        ),
        th.Property(
            "artisan_callback_url",
            th.StringType,
            description=(
                "Optional `callbackUrl` passed to Artisan export requests. Never required: "
                "the tap polls the job."
            ),
        ),
        # --- Indicative -----------------------------------------------------------
        th.Property(
            "indicative_base_url",
            th.StringType,
            default="https://query.indicative.com",
            description="Indicative (mParticle Analytics) query API base URL.",
        ),
        _secret("indicative_api_key", "Indicative API key (Basic auth user)."),
        _secret("indicative_access_token", "Indicative access token (Basic auth password)."),
        th.Property(
            "indicative_segment_ids",
            StringList,
            description="Limit to these Indicative segment IDs (default: all segments).",
        ),
        # --- Kissmetrics ----------------------------------------------------------
        th.Property(
            "kissmetrics_api_base_url",
            th.StringType,
            default="https://api.kissmetrics.com",
            description=(
                "Kissmetrics core API base URL (the token is sent only to this host and the "
                "query host)."
            ),
        ),
        th.Property(
            "kissmetrics_query_base_url",
            th.StringType,
            default="https://query.kissmetrics.com",
            description=(
                "Kissmetrics query API base URL; a run link to any other host stops the run."
            ),
        ),
        _secret("kissmetrics_api_token", "Kissmetrics personal API token (Bearer)."),
        th.Property(
            "kissmetrics_report_ids",
            StringList,
            description="Limit to these Kissmetrics report IDs (default: all reports).",
        ),
        th.Property(
            "kissmetrics_window_days",
            th.IntegerType(minimum=1),
            default=1,
            description="Size in days of each report run's date window.",
        ),
        # --- Acoustic Exchange ----------------------------------------------------
        th.Property(
            "acoustic_base_url",
            th.StringType,
            description="The Acoustic Exchange account's assigned base URL (required to enable).",
        ),
        _secret("acoustic_auth_key", "Acoustic Exchange authentication key (Bearer)."),
        th.Property(
            "acoustic_job_categories",
            th.ArrayType(th.StringType(allowed_values=list(ACOUSTIC_JOB_CATEGORIES))),
            default=["SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB"],
            description="Job categories to read.",
        ),
        th.Property(
            "acoustic_endpoint_id",
            th.StringType,
            description="Only jobs of this endpoint (`endpointId` filter).",
        ),
        th.Property(
            "acoustic_mark_complete",
            th.BooleanType,
            default=False,
            description=(
                "After every file of a job is downloaded, mark the job complete at Acoustic "
                "(PUT /v1/jobs/{id}/status/complete), which deletes its files there. Opt-in: it "
                "changes vendor data, and it follows the tap's emission of the rows, not the "
                "target's commit: if the load then fails, the files are gone at Acoustic."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        redaction.install(redaction.secret_values(self.config, self.config_jsonschema))
        self._check_start_date()

    def _check_start_date(self) -> None:
        """JSON schema's ``format`` is not enforced by the SDK: check the one date we take."""
        value = self.config.get("start_date")
        if not value:
            return
        try:
            parse_timestamp(str(value))
        except ValueError:
            msg = f"start_date {value!r} is not an ISO-8601 date-time (e.g. 2026-01-31T00:00:00Z)."
            raise ConfigValidationError(msg, errors=[msg]) from None

    def discover_streams(self) -> list[Stream]:
        """Return the streams of every vendor whose credentials are configured."""
        vendors = enabled_vendors(self.config)
        if not vendors:
            hints = "; ".join(
                f"{vendor.label}: {', '.join(vendor.required_settings)}" for vendor in VENDORS
            )
            msg = f"No vendor is configured. Set the credentials of at least one vendor ({hints})."
            raise ConfigValidationError(msg, errors=[msg])
        return [stream_class(tap=self) for vendor in vendors for stream_class in vendor.streams]

    def check_connections(self) -> bool:
        """One cheap request per enabled vendor; log which vendor failed and why."""
        healthy = True
        for vendor in enabled_vendors(self.config):
            first = next(s for s in self.streams.values() if isinstance(s, vendor.streams[0]))
            stream = t.cast(VendorStream, first)
            try:
                stream.send("GET", vendor.check_path)
            except Exception as exc:  # report every vendor, then fail
                healthy = False
                reason = str(exc) if str(exc).startswith(vendor.label) else f"{vendor.label}: {exc}"
                self.logger.error("Connection test failed: %s", reason)
            else:
                self.logger.info(
                    "%s: connection test passed (GET %s).", vendor.label, vendor.check_path
                )
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
        config: _ConfigInput = ctx.params.get("config", _ConfigInput())
        tap = cls(config=config.config, parse_env_config=config.parse_env, validate_config=True)
        ctx.exit(0 if tap.check_connections() else 1)


def cli() -> None:
    """The ``tap-segments`` command: the SDK's CLI, with the tap's own errors on one line.

    Errors the tap raises on purpose (``TapSegmentsError``: they name vendor, endpoint, job or
    file) and API errors left after the retries end the run with one ERROR line and exit 1;
    anything unexpected keeps its traceback.
    """
    try:
        TapSegments.cli()
    except (FatalAPIError, RetriableAPIError) as exc:
        logging.getLogger(TapSegments.name).error("%s", exc)
        sys.exit(1)


if __name__ == "__main__":
    cli()

__all__: t.Sequence[str] = ["TapSegments", "cli"]
