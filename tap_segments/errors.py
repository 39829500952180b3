"""Errors the tap raises on purpose: each names the vendor and what failed, on one line."""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError


class TapSegmentsError(FatalAPIError):
    """Base of the tap's own errors; fatal: the run stops with this message."""


class SettingsError(TapSegmentsError):
    """A setting (or a combination of settings) the tap cannot work with."""


class StateError(TapSegmentsError):
    """A state the tap cannot resume from (not JSON, wrong shape, bad entries)."""


class VendorAuthError(TapSegmentsError):
    """401/403: the credentials are wrong or lack access."""


class VendorUnreachableError(TapSegmentsError):
    """The vendor could not be reached (refused, timed out, reset) after every retry."""


class RedirectError(TapSegmentsError):
    """A redirect loop, or an API call redirected outside the vendor's configured origin."""


class MalformedResponseError(TapSegmentsError):
    """A body that is not what the vendor documents (HTML page, truncated JSON, ...)."""


class ExportFailedError(TapSegmentsError):
    """The vendor reported the export job as failed."""


class ExportTimeoutError(TapSegmentsError):
    """An export job did not finish within export_timeout_seconds."""


class ExportFileGoneError(TapSegmentsError):
    """A result file answered 403/404: expired or deleted; the export must be triggered again."""


class ResultFileUnavailableError(TapSegmentsError):
    """A result file that cannot be read as configured (s3:// without the extra or credentials)."""


class FileFormatError(TapSegmentsError):
    """A result file that does not parse (rows disagree with the header, broken JSON, a page)."""


class DownloadInterruptedError(TapSegmentsError):
    """A result file download kept failing part-way through."""


class DownloadTimeoutError(TapSegmentsError):
    """A result file's download took longer than its time bound."""


class Terminated(BaseException):
    """SIGTERM: stop now, keeping the state printed so far (a BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` swallows it)."""
