"""The base stream every vendor builds on: error policy, retries, JSON parsing, downloads.

``VendorStream`` decides in one place which answers are retried (429, 5xx, connection
errors: with exponential backoff that never waits less than the vendor's ``Retry-After``),
which stop the run (401/403 name the vendor and the settings to check, never their
values), and what counts as a malformed body (an HTML page or truncated JSON where JSON was
documented). Vendor base classes set ``vendor_label``, ``credential_settings``, ``url_base``
and an authenticator; their streams are mostly declarations.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import typing as t
from http import HTTPStatus
from urllib.parse import urljoin, urlparse

import requests
from singer_sdk import RESTStream
from singer_sdk.helpers.jsonpath import extract_jsonpath

from tap_segments.errors import (
    ExportFileGoneError,
    MalformedResponseError,
    VendorAuthError,
    VendorUnreachableError,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

MAX_RETRY_AFTER_SECONDS = 3600.0


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds the vendor asked us to wait (``Retry-After`` as seconds or an HTTP date)."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def describe_network_error(exc: BaseException) -> str:
    """A short reason for a network failure, without the library's nested reprs."""
    text = str(exc)
    for reason in ("Connection refused", "timed out", "Name or service not known", "reset"):
        if reason.lower() in text.lower():
            return f"{exc.__class__.__name__} ({reason.lower()})"
    return exc.__class__.__name__


def endpoint_of(url: str) -> str:
    """The path of a URL, without query string (which may hold signatures or ids)."""
    return urlparse(url).path or "/"


class VendorStream(RESTStream):
    """Base of every stream of the tap."""

    #: Human name of the vendor, used in every message ("Indicative").
    vendor_label: str = ""
    #: Settings to check when the vendor rejects the credentials.
    credential_settings: tuple[str, ...] = ()
    #: Don't log full URLs: they can carry ids and presigned signatures.
    _LOG_REQUEST_METRIC_URLS = False
    #: Answers to a result-file download that mean "expired or deleted", not "bad credentials".
    file_gone_statuses: tuple[int, ...] = (HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND)

    @property
    def timeout(self) -> int:
        return int(float(self.config.get("request_timeout_seconds", 300)))

    def get_new_paginator(self) -> t.Any:
        """Single page unless a vendor stream says otherwise."""
        return None

    # -- errors -----------------------------------------------------------------------

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise VendorAuthError(self.auth_error_message(response))
        super().validate_response(response)

    def auth_error_message(self, response: requests.Response) -> str:
        settings = " and ".join(self.credential_settings)
        meaning = (
            "the credentials were rejected"
            if response.status_code == HTTPStatus.UNAUTHORIZED
            else "the credentials lack access to this endpoint"
        )
        return (
            f"{self.vendor_label}: {response.status_code} {response.reason} for "
            f"{response.request.method} {endpoint_of(response.url)}: {meaning}. "
            f"Check the settings {settings}."
        )

    def response_error_message(self, response: requests.Response) -> str:
        snippet = " ".join(response.text[:200].split()) if response.content else ""
        return (
            f"{self.vendor_label}: {response.status_code} {response.reason} for "
            f"{response.request.method} {endpoint_of(response.url)}"
            + (f": {snippet}" if snippet else "")
        )

    # -- retries ----------------------------------------------------------------------

    def backoff_max_tries(self) -> int:
        return int(self.config.get("http_max_tries", 6))

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:  # type: ignore[override]
        """Exponential backoff that never waits less than the vendor's ``Retry-After``.

        backoff sends each exception into this generator before asking for the next wait.
        """
        base = float(self.config.get("http_retry_base_seconds", 1.0))
        attempt = 0
        exception = yield 0.0  # priming value, discarded by backoff
        while True:
            wait = min(base * (2**attempt), 60.0)
            response = getattr(exception, "response", None)
            wait = max(wait, retry_after_seconds(response) or 0.0)
            attempt += 1
            exception = yield wait

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """The SDK's retries, then one clear error when the vendor cannot be reached."""
        retried = super().request_decorator(func)

        @functools.wraps(func)
        def send_or_explain(prepared: requests.PreparedRequest, context: t.Any) -> t.Any:
            try:
                return retried(prepared, context)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                parsed = urlparse(str(prepared.url))
                raise VendorUnreachableError(
                    f"{self.vendor_label}: {prepared.method} {parsed.scheme}://{parsed.netloc}"
                    f"{parsed.path} failed after {self.backoff_max_tries()} tries: "
                    f"{describe_network_error(exc)}. Check the base URL setting and the network."
                ) from exc

        return send_or_explain

    def backoff_handler(self, details: t.Any) -> None:
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        request = getattr(response, "request", None) or getattr(exc, "request", None)
        where = (
            f"{request.method} {endpoint_of(str(request.url))}"
            if request is not None
            else getattr(self, "path", None) or self.name
        )
        self.logger.warning(
            "%s: retrying %s in %.1f s after try %d (%s)",
            self.vendor_label,
            where,
            details.get("wait", 0.0),
            details.get("tries", 0),
            f"HTTP {response.status_code}" if response is not None else describe_network_error(exc),
        )

    # -- state ------------------------------------------------------------------------

    def flush_state(self) -> None:
        """Write a STATE message now (the SDK otherwise writes one every 10,000 records)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    # -- requests beyond the stream's own endpoint ------------------------------------

    def absolute_url(self, path_or_url: str) -> str:
        if urlparse(path_or_url).scheme:
            return path_or_url
        return urljoin(self.url_base.rstrip("/") + "/", path_or_url.lstrip("/"))

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict[str, t.Any] | None = None,
        json_body: t.Any = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
        stream: bool = False,
        expected_statuses: t.Collection[int] = (),
        context: Context | None = None,
    ) -> requests.Response:
        """Send one request with the stream's auth, error policy and retries.

        Answers whose status is in ``expected_statuses`` (e.g. 404 when polling a job the
        vendor may have forgotten) are returned to the caller instead of raising.
        """
        prepared = self.build_prepared_request(
            method=method,
            url=self.absolute_url(path_or_url),
            params=params or {},
            headers={**self.http_headers, **(headers or {})},
            json=json_body,
        )

        def _send(request: requests.PreparedRequest, _context: Context | None) -> requests.Response:
            if authenticated:
                request = self.authenticator(request)
            response = self.requests_session.send(
                request, timeout=self.timeout, allow_redirects=True, stream=stream
            )
            if response.status_code not in expected_statuses:
                self.validate_response(response)
            return response

        return self.request_decorator(_send)(prepared, context)

    def send_json(self, method: str, path_or_url: str, **kwargs: t.Any) -> t.Any:
        """``send`` and parse the documented JSON body, or fail naming the endpoint."""
        response = self.send(method, path_or_url, **kwargs)
        return self.json_body(response)

    def json_body(self, response: requests.Response) -> t.Any:
        where = f"{response.request.method} {endpoint_of(response.url)}"
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower() or response.text.lstrip()[:1] == "<":
            raise MalformedResponseError(
                f"{self.vendor_label}: {where} answered an HTML page instead of JSON "
                f"(HTTP {response.status_code})."
            )
        try:
            return json.loads(response.text)
        except ValueError as exc:
            raise MalformedResponseError(
                f"{self.vendor_label}: {where} answered a body that is not valid JSON "
                f"({exc.__class__.__name__}: {exc}; {len(response.content)} bytes)."
            ) from exc

    def malformed(self, where: str, expected: str) -> MalformedResponseError:
        """The error for a body that is not what the vendor documents."""
        return MalformedResponseError(f"{self.vendor_label}: {where} did not answer {expected}.")

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        yield from extract_jsonpath(self.records_jsonpath, input=self.json_body(response))

    def open_file(
        self, url: str, *, authenticated: bool, name: str, headers: dict[str, str] | None = None
    ) -> t.BinaryIO:
        """Open a result file for streaming; ``file_gone_statuses`` mean expired or deleted."""
        response = self.send(
            "GET",
            url,
            authenticated=authenticated,
            stream=True,
            headers=headers,
            expected_statuses=self.file_gone_statuses,
        )
        if response.status_code in self.file_gone_statuses:
            response.close()
            raise ExportFileGoneError(
                f"{self.vendor_label}: result file {name} is no longer available "
                f"(HTTP {response.status_code} for GET {endpoint_of(url)})."
            )
        raw = response.raw
        raw.auto_close = False  # let io wrappers see EOF rather than a closed file
        return t.cast(t.BinaryIO, raw)

    def probe_file(self, url: str, *, authenticated: bool, name: str) -> None:
        """Check that a result file can still be downloaded, reading at most one byte."""
        headers = {"Range": "bytes=0-0"}
        self.open_file(url, authenticated=authenticated, name=name, headers=headers).close()
