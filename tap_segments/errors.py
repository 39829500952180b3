"""Errors the tap raises on purpose: each names the vendor and what failed."""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError


class TapSegmentsError(FatalAPIError):
    """Base of the tap's own errors; fatal: the run stops with this message."""


class VendorAuthError(TapSegmentsError):
    """401/403: the credentials are wrong or lack access."""


class VendorUnreachableError(TapSegmentsError):
    """The vendor could not be reached (refused, timed out, reset) after every retry."""


class MalformedResponseError(TapSegmentsError):
    """A body that is not what the vendor documents (HTML page, truncated JSON, ...)."""


class ExportFailedError(TapSegmentsError):
    """The vendor reported the export job as failed."""


class ExportTimeoutError(TapSegmentsError):
    """An export job did not finish within export_timeout_seconds."""


class ExportFileGoneError(TapSegmentsError):
    """A result file answered 403/404: expired or deleted; the export must be triggered again."""


class FileFormatError(TapSegmentsError):
    """A result file that does not parse (rows disagree with the header, broken JSON)."""


class DownloadInterruptedError(TapSegmentsError):
    """A result file download kept failing part-way through."""
