"""HTTP for every vendor client: credentials in scope only, one status policy, retries, metrics.

``HttpClient`` is what a vendor client (``vendors/<vendor>/api.py``) sends through. It owns a
``requests.Session`` for connection reuse, and never gives it credentials: requests are
prepared from scratch (no session auth, headers, cookies or netrc) and the vendor's
authenticator is applied to each request whose URL is in the vendor's ``ApiScope``: the
scheme, host and port of a configured base URL, under its path, and carrying no signature
of its own (a presigned URL). Redirects are followed here, one hop at a time, and each hop is
checked again, so credentials never cross to another origin.

The status policy, in one place: 401/403 stop the run naming the vendor and the settings
to check; 429, 5xx and connection errors are retried (``http_max_tries``) with a wait that
doubles from ``http_retry_base_seconds`` and is never shorter than ``Retry-After`` (an HTTP
date is read against the server's own ``Date``, so clock skew does not stretch it; capped
at an hour); any other 4xx stops the run naming the endpoint. A body that is not the JSON
the vendor documents (an HTML page, truncated JSON) is an error naming the endpoint. Every
request logs the SDK's ``http_request_duration`` metric. Nothing printed carries a
credential (``tap_segments.redaction``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import email.utils
import json
import logging
import typing as t
from http import HTTPStatus
from urllib.parse import parse_qsl, urljoin, urlsplit

import backoff
import requests
from singer_sdk import metrics
from singer_sdk.authenticators import APIAuthenticatorBase
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_segments import redaction
from tap_segments.errors import (
    MalformedResponseError,
    RedirectError,
    VendorAuthError,
    VendorUnreachableError,
)
from tap_segments.timeutil import now

if t.TYPE_CHECKING:
    from tap_segments.settings import CommonSettings

MAX_RETRY_AFTER_SECONDS = 3600.0
MAX_RETRY_WAIT_SECONDS = 60.0
MAX_REDIRECTS = 10
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Query parameters that make a URL carry its own authorisation (S3 SigV4 and SigV2, GCS,
#: Azure SAS, CloudFront): credentials are never added to such a URL.
SIGNATURE_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
        "awsaccesskeyid",
        "x-goog-signature",
        "x-goog-credential",
        "sig",
        "key-pair-id",
    }
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "tap-segments"
#: Retried (``http_max_tries``): 429 and 5xx (``RetriableAPIError``) and connection errors.
RETRIED = (
    RetriableAPIError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionResetError,
)

#: The stream a request is made for, for the SDK's request metric (set by the streams).
current_stream: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_stream", default=None
)


class HeaderAuthenticator(APIAuthenticatorBase):
    """Fixed credential headers (Artisan sends two)."""

    def __init__(self, headers: t.Mapping[str, str]) -> None:
        super().__init__()
        self.auth_headers.update(headers)


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a URL: the unit credentials are scoped to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def is_presigned(url: str) -> bool:
    """True when the URL carries its own signature in its query string."""
    query = urlsplit(url).query
    return any(name.lower() in SIGNATURE_PARAMS for name, _ in parse_qsl(query, True))


def endpoint_of(url: str) -> str:
    """The path of a URL, without the query string (which may hold ids or signatures)."""
    return urlsplit(url).path or "/"


class ApiScope:
    """Where a vendor's credentials may go: its configured base URLs, nowhere else."""

    def __init__(self, *base_urls: str) -> None:
        self.bases = [(origin(url), urlsplit(url).path.rstrip("/")) for url in base_urls]

    def covers(self, url: str) -> bool:
        if is_presigned(url):
            return False
        target, path = origin(url), urlsplit(url).path or "/"
        return any(
            target == base and (path == prefix or path.startswith(prefix + "/") or not prefix)
            for base, prefix in self.bases
        )


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds the vendor asked us to wait: ``Retry-After`` as seconds or as an HTTP date.

    A date is measured against the answer's own ``Date`` header when it has one (both are
    the server's clock), so a skewed client clock changes nothing; capped at an hour.
    """
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        server_now = _http_date(response.headers.get("Date", ""))
        if server_now is None:
            server_now = now()
        seconds = (when - server_now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _http_date(value: str) -> dt.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def describe_network_error(exc: BaseException) -> str:
    """A short reason for a network failure, without the library's nested reprs."""
    text = str(exc).lower()
    for reason in ("connection refused", "timed out", "name or service not known", "reset"):
        if reason in text:
            return f"{exc.__class__.__name__} ({reason})"
    return exc.__class__.__name__


def snippet(response: requests.Response, limit: int = 200) -> str:
    """The start of a body, on one line, with credentials masked (vendors echo headers)."""
    try:
        text = response.text[:limit] if response.content else ""
    except (requests.exceptions.RequestException, RuntimeError):
        return ""
    return redaction.scrub(" ".join(text.split()))


class HttpClient:
    """One vendor's HTTP: session, credential scope, status policy, retries and metrics."""

    def __init__(
        self,
        *,
        vendor_label: str,
        credential_settings: t.Sequence[str],
        base_url_setting: str,
        authenticator: APIAuthenticatorBase,
        scope: ApiScope,
        settings: CommonSettings,
        logger: logging.Logger,
        headers: t.Mapping[str, str] | None = None,
    ) -> None:
        self.vendor_label = vendor_label
        self.credential_settings = tuple(credential_settings)
        self.base_url_setting = base_url_setting
        self.authenticator = authenticator
        self.scope = scope
        self.settings = settings
        self.logger = logger
        self.headers = {
            **requests.utils.default_headers(),
            "User-Agent": USER_AGENT,
            **(headers or {}),
        }
        self.session = requests.Session()
        redaction.register(*map(str, authenticator.auth_headers.values()))
        self._send_with_retries = backoff.on_exception(
            self._waits,
            RETRIED,
            max_tries=settings.http_max_tries,
            on_backoff=self._log_retry,
            jitter=None,
            logger=None,
        )(self._send_once)

    # -- sending ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: t.Mapping[str, t.Any] | None = None,
        json_body: t.Any = None,
        expected: t.Collection[int] = (),
        stream: bool = False,
        api_call: bool = True,
        headers: t.Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one request under the status policy, with retries.

        ``endpoint`` is the documented path template (for messages and metrics).
        ``expected`` statuses are handed back instead of raising (404 of a job the vendor
        forgot). ``api_call=False`` is a result-file download: it may be redirected to
        other hosts, which get no credentials.
        """
        try:
            return t.cast(
                requests.Response,
                self._send_with_retries(
                    method, url, endpoint, params, json_body, expected, stream, api_call, headers
                ),
            )
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            parts = urlsplit(url)
            raise VendorUnreachableError(
                f"{self.vendor_label}: {method} {parts.scheme}://{parts.netloc}{parts.path} "
                f"failed after {self.settings.http_max_tries} tries: "
                f"{describe_network_error(exc)}. Check {self.base_url_setting} and the network."
            ) from None

    def _send_once(
        self,
        method: str,
        url: str,
        endpoint: str,
        params: t.Mapping[str, t.Any] | None,
        json_body: t.Any,
        expected: t.Collection[int],
        stream: bool,
        api_call: bool,
        headers: t.Mapping[str, str] | None,
    ) -> requests.Response:
        prepared = self._prepare(method, url, params, json_body, headers)
        seen = {prepared.url}
        for _hop in range(MAX_REDIRECTS + 1):
            response = self.session.send(
                prepared,
                timeout=self.settings.request_timeout_seconds,
                allow_redirects=False,
                stream=stream,
            )
            self._log_duration(endpoint, response)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                break
            response.close()
            target = urljoin(str(prepared.url), location)
            self._check_redirect(method, str(prepared.url), target, endpoint, api_call, seen)
            seen.add(target)
            if response.status_code == HTTPStatus.SEE_OTHER or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, json_body = "GET", None
            prepared = self._prepare(method, target, None, json_body, headers)
        else:  # pragma: no cover - the loop check above raises first
            raise RedirectError(f"{self.vendor_label}: too many redirects for {endpoint}.")
        if not stream:
            response.content  # noqa: B018 - read the body now, within the retry
        if response.status_code not in expected:
            self.check_status(response)
        return response

    def _prepare(
        self,
        method: str,
        url: str,
        params: t.Mapping[str, t.Any] | None,
        json_body: t.Any,
        headers: t.Mapping[str, str] | None,
    ) -> requests.PreparedRequest:
        prepared = requests.Request(
            method,
            url,
            params=dict(params or {}),
            json=json_body,
            headers={**self.headers, **(headers or {})},
        ).prepare()
        if self.scope.covers(str(prepared.url)):
            prepared = self.authenticator(prepared)
        return prepared

    def _check_redirect(
        self,
        method: str,
        source: str,
        target: str,
        endpoint: str,
        api_call: bool,
        seen: set[str | None],
    ) -> None:
        if target in seen or len(seen) > MAX_REDIRECTS:
            raise RedirectError(
                f"{self.vendor_label}: {method} {endpoint} redirects in a loop "
                f"({len(seen)} hops, back to {origin_text(target)}{endpoint_of(target)})."
            )
        if api_call and self.scope.covers(source) and not self.scope.covers(target):
            raise RedirectError(
                f"{self.vendor_label}: {method} {endpoint} redirects to {origin_text(target)}, "
                f"outside {self.base_url_setting}; credentials are sent only there. If that "
                f"host is the vendor's, set {self.base_url_setting} to it."
            )

    # -- status policy ----------------------------------------------------------------

    def check_status(self, response: requests.Response) -> None:
        status = response.status_code
        where = f"{response.request.method} {endpoint_of(response.url)}"
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            meaning = (
                "the credentials were rejected"
                if status == HTTPStatus.UNAUTHORIZED
                else "the credentials lack access to this endpoint"
            )
            raise VendorAuthError(
                f"{self.vendor_label}: {status} {response.reason} for {where}: {meaning}. "
                f"Check the settings {' and '.join(self.credential_settings)}."
            )
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.error_text(response, where), response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(self.error_text(response, where))

    def error_text(self, response: requests.Response, where: str) -> str:
        body = snippet(response)
        return f"{self.vendor_label}: {response.status_code} {response.reason} for {where}" + (
            f": {body}" if body else ""
        )

    # -- retries ----------------------------------------------------------------------

    def _waits(self) -> t.Generator[float, t.Any, None]:
        """Doubling waits, never shorter than ``Retry-After``; backoff sends each exception."""
        attempt = 0
        exception = yield 0.0  # priming value, discarded by backoff
        while True:
            wait = min(self.settings.http_retry_base_seconds * (2**attempt), MAX_RETRY_WAIT_SECONDS)
            wait = max(wait, retry_after_seconds(getattr(exception, "response", None)) or 0.0)
            attempt += 1
            exception = yield wait

    def _log_retry(self, details: t.Any) -> None:
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        method, endpoint = details["args"][0], endpoint_of(details["args"][1])
        self.logger.warning(
            "%s: retrying %s %s in %.1f s after try %d (%s)",
            self.vendor_label,
            method,
            endpoint,
            details.get("wait", 0.0),
            details.get("tries", 0),
            f"HTTP {response.status_code}" if response is not None else describe_network_error(exc),
        )

    # -- metrics ----------------------------------------------------------------------

    def _log_duration(self, endpoint: str, response: requests.Response) -> None:
        """The SDK's ``http_request_duration`` timer, as its REST streams log it."""
        point = metrics.Point(
            "timer",
            metric=metrics.Metric.HTTP_REQUEST_DURATION,
            value=response.elapsed.total_seconds(),
            tags={
                metrics.Tag.STREAM: current_stream.get() or self.vendor_label,
                metrics.Tag.ENDPOINT: endpoint,
                metrics.Tag.HTTP_STATUS_CODE: response.status_code,
                metrics.Tag.STATUS: (
                    metrics.Status.SUCCEEDED
                    if response.status_code < HTTPStatus.BAD_REQUEST
                    else metrics.Status.FAILED
                ),
            },
        )
        metrics.log(METRICS_LOGGER, point)

    # -- bodies -----------------------------------------------------------------------

    def get_json(self, url: str, *, endpoint: str, **kwargs: t.Any) -> t.Any:
        return self.json_body(self.request("GET", url, endpoint=endpoint, **kwargs))

    def json_body(self, response: requests.Response) -> t.Any:
        """The documented JSON body, or an error naming the endpoint."""
        where = f"{response.request.method} {endpoint_of(response.url)}"
        text = response.text
        head = text.lstrip("\ufeff \t\r\n")[:1]
        if "html" in response.headers.get("Content-Type", "").lower() or head == "<":
            raise MalformedResponseError(
                f"{self.vendor_label}: {where} answered an HTML/XML page instead of JSON "
                f"(HTTP {response.status_code})."
            )
        try:
            return json.loads(text.lstrip("\ufeff"))
        except ValueError as exc:
            raise MalformedResponseError(
                f"{self.vendor_label}: {where} answered a body that is not valid JSON "
                f"({exc.__class__.__name__}: {exc}; {len(response.content)} bytes)."
            ) from None

    def malformed(self, where: str, expected: str) -> MalformedResponseError:
        """The error for a body that is not what the vendor documents."""
        return MalformedResponseError(f"{self.vendor_label}: {where} did not answer {expected}.")


METRICS_LOGGER = metrics.get_metrics_logger()
