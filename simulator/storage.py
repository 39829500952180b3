"""Object storage that behaves like Amazon S3, where the vendors' result files live.

Artisan's ``result_url`` and Indicative's ``filename`` point here, on origins of their own
(``http://127.0.0.1:PORT``, not the vendor API's), as presigned URLs. What it does is what
S3's documentation says (quoted below from "Authenticating Requests: Using Query Parameters
(AWS Signature Version 4)", "Error responses", "GetObject" and RFC 9110 for ranges):

- Objects are private: they are read only through a presigned URL, whose query carries
  ``X-Amz-Algorithm=AWS4-HMAC-SHA256``, ``X-Amz-Credential=<key>/<date>/<region>/s3/
  aws4_request``, ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders=host`` and
  ``X-Amz-Signature``: a SigV4 signature over the method, path, query and ``Host`` header,
  made and checked with a secret key only this process knows. No auth: 403 AccessDenied;
  a wrong signature: 403 SignatureDoesNotMatch; past ``X-Amz-Date + X-Amz-Expires`` on the
  storage's own clock (``StorageClock``, injectable): 403 AccessDenied "Request has expired".
- An ``Authorization`` header with a presigned query: 400 InvalidArgument "Only one auth
  mechanism allowed; ..." (S3 echoes the header's value in ``<ArgumentValue>``); any other
  ``Authorization`` header than SigV4: 400 InvalidArgument "Unsupported Authorization Type".
- A missing key answers 403 AccessDenied, as S3 does when the signer may not list the
  bucket (GetObject: "If you don't have the s3:ListBucket permission, Amazon S3 returns an
  HTTP status code 403"); ``StorageConfig.missing_key_status = 404`` gives NoSuchKey.
- ``GET`` and ``HEAD`` with ``Accept-Ranges: bytes``, ``ETag``, ``Content-Length``,
  ``Last-Modified``; ``Range: bytes=a-b | a- | -n`` answers 206 with ``Content-Range``, and
  416 InvalidRange when unsatisfiable (any range of an empty object); several ranges in one
  header are ignored and the whole object is served, as S3 does.
- Objects may be generated on the fly (a factory of byte chunks): a file of millions of rows
  is never held in memory; a Range on it generates and skips.
- Switches: a redirect (302, or 307 as S3 itself uses) to a fresh presigned URL on this or
  the second storage origin before serving, or redirects that never end (see
  ``StorageConfig.redirect`` and the ``redirect`` / ``redirect_loop`` fault kinds).

Every request is recorded with its method, path, query and every header, whatever the
answer: ``ObjectStorage.requests`` and ``ObjectStorage.credential_leaks(secrets)`` let tests
check from the storage side that no vendor credential reached it. Control endpoints on the
simulator's API server (``/_sim/storage/...``) give the same to other processes.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets as token_source
import threading
import time
import typing as t
from dataclasses import dataclass, field
from email.message import Message
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from simulator import badfiles
from simulator.faults import Fault, FaultSet
from simulator.server import (
    LoggedRequest,
    Request,
    Response,
    SimHandler,
    error,
    fault_response,
    http_date,
    json_response,
    set_switches,
)

Headers = t.Union[Message, t.Mapping[str, str]]  # noqa: UP007 (an alias, read at run time)
ALGORITHM = "AWS4-HMAC-SHA256"
#: "X-Amz-Expires ... Minimum value is 1 second and maximum is 7 days" (604800 seconds).
MAX_EXPIRES = 604_800
AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
#: A query parameter of ours, part of the signed query, counting redirects already taken.
HOP_PARAM = "x-sim-hop"
PART_SIZE = 8 * 1024 * 1024  # S3's default multipart part size, for generated objects' ETags
#: Headers that carry a vendor credential whatever their value.
CREDENTIAL_HEADERS = ("authorization", "public-api-key")


@dataclass
class StorageConfig:
    """Switches of the storage servers."""

    region: str = "us-east-1"
    access_key_id: str = "SIMAKIA0STORAGE0KEY"
    #: our choice: URLs valid for an hour unless a vendor says otherwise.
    expires_seconds: int = 3600
    #: 403 (the presigner may not list the bucket, S3's answer then) or 404 (NoSuchKey).
    missing_key_status: int = 403
    #: None, "same" (302 to a fresh URL on the same origin, then the object), "other" (to
    #: the second origin) or "loop" (302s between the two origins that never end).
    redirect: str | None = None
    #: 302 (what CDNs and proxies in front of storage answer) or 307 (S3's TemporaryRedirect).
    redirect_status: int = 302


class StorageClock:
    """The storage's clock: the wall clock moved by ``advance``, or a fixed moment.

    Signing and checking both read it, so expiry depends only on the seconds between the two,
    never on the date the tests run."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)
        self.fixed: dt.datetime | None = None

    def now(self) -> dt.datetime:
        base = self.fixed or dt.datetime.now(dt.timezone.utc)
        return (base + self.offset).replace(microsecond=0)

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)

    def set(self, moment: dt.datetime | None) -> None:
        """Freeze the clock at ``moment`` (None: back to the wall clock), offset cleared."""
        self.fixed, self.offset = moment, dt.timedelta(0)


@dataclass
class StoredObject:
    """One object: its bytes come from ``chunks()`` each time it is read."""

    bucket: str
    key: str
    chunks: t.Callable[[], t.Iterable[bytes]]
    vendor: str = "storage"
    #: The path the vendor's faults match (``/files/<name>``): see ``simulator.faults``.
    fault_path: str = ""
    content_type: str = "application/octet-stream"
    content_encoding: str | None = None
    last_modified: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    size: int | None = None
    etag: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def measure(self) -> tuple[int, str]:
        """Size and ETag, computed once: an in-memory object's ETag is the MD5 of its bytes, as
        S3's for a single-part upload; a generated object of known size gets a multipart-style
        ETag (``"<md5>-<parts>"``, our choice: S3's ETag of a multipart upload is not the MD5
        of the object either)."""
        with self._lock:
            if self.size is not None and self.etag is not None:
                return self.size, self.etag
            if self.size is None:
                digest, size = hashlib.md5(usedforsecurity=False), 0
                for chunk in self.chunks():
                    digest.update(chunk)
                    size += len(chunk)
                self.size, self.etag = size, f'"{digest.hexdigest()}"'
            else:
                name = f"{self.bucket}/{self.key}/{self.size}".encode()
                parts = max(1, -(-self.size // PART_SIZE))
                self.etag = f'"{hashlib.md5(name, usedforsecurity=False).hexdigest()}-{parts}"'
            return self.size, self.etag


@dataclass
class Leak:
    """A storage request that carried a credential, and why it counts as one."""

    request: LoggedRequest
    reasons: list[str]

    def to_dict(self) -> dict[str, t.Any]:
        return {**self.request.to_dict(), "reasons": self.reasons}


def secret_forms(secrets: t.Iterable[str]) -> dict[str, str]:
    """Every form a secret travels in -> a description naming which secret (masked).

    Raw (which ``Token token="..."`` and ``Bearer ...`` contain), URL-encoded, base64, and
    the base64 ``a:b`` pair of HTTP Basic for every two of them."""
    values = [s for s in dict.fromkeys(secrets) if s]
    forms: dict[str, str] = {}
    for value in values:
        label = f"secret {value[:3]}…"
        forms[value] = label
        forms[quote(value, safe="")] = f"{label} (URL-encoded)"
        forms[quote_plus(value)] = f"{label} (URL-encoded)"
        forms[base64.b64encode(value.encode()).decode()] = f"{label} (base64)"
        for other in values:
            pair = base64.b64encode(f"{value}:{other}".encode()).decode()
            forms[pair] = f"Basic pair {value[:3]}…:{other[:3]}… (base64)"
    return forms


def request_leaks(request: LoggedRequest, forms: t.Mapping[str, str]) -> list[str]:
    """Why ``request`` carried a credential: credential headers, or a secret in any form in
    a header value, the query or the path."""
    reasons = [
        f"header {name}" for name, _ in request.headers if name.lower() in CREDENTIAL_HEADERS
    ]
    places = [(f"header {name}", value) for name, value in request.headers]
    places += [("query", request.query), ("query", unquote(request.query)), ("path", request.path)]
    for where, text in places:
        for form, label in forms.items():
            if form in text:
                reasons.append(f"{label} in {where}")
    return list(dict.fromkeys(reasons))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _uri_encode(text: str, *, slash: bool = True) -> str:
    """SigV4's URI encoding: every byte but the unreserved characters, ``/`` kept in paths."""
    return quote(text, safe="-_.~/" if slash else "-_.~")


def _amz_date(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def s3_error(status: int, code: str, message: str, **extra: str) -> Response:
    """S3's REST error answer: ``Content-Type: application/xml`` and an ``<Error>`` document
    with Code, Message, any extra elements, RequestId and HostId."""
    request_id = token_source.token_hex(8).upper()
    elements = "".join(f"<{name}>{_xml(value)}</{name}>" for name, value in extra.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message>{elements}"
        f"<RequestId>{request_id}</RequestId><HostId>{request_id.lower()}</HostId></Error>"
    )
    headers = {"x-amz-request-id": request_id}
    return Response(status, body.encode(), headers, "application/xml")


def signature_mismatch() -> Response:
    """S3's answer to a presigned URL whose signature is not the one it computes."""
    return s3_error(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ObjectStorage:
    """The objects, the signing key, the clock, the switches and the request log, shared by
    the storage origins (``StorageServer``); vendor apps ``put`` objects and ``presign``."""

    def __init__(self, config: StorageConfig | None = None, faults: FaultSet | None = None):
        self.config = config or StorageConfig()
        self.faults = faults or FaultSet()
        self.clock = StorageClock()
        self._secret_key = token_source.token_urlsafe(30)  # nobody outside this process knows it
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.lock = threading.Lock()
        self.log: list[LoggedRequest] = []
        self.origins: list[str] = []  # http://127.0.0.1:PORT of each StorageServer
        #: The credentials ``credential_leaks()`` looks for by default (set by ``Simulator``).
        self.default_secrets: t.Callable[[], list[str]] = list

    # -- objects --------------------------------------------------------------------------

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes | t.Callable[[], t.Iterable[bytes]],
        *,
        vendor: str = "storage",
        fault_path: str = "",
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
        size: int | None = None,
    ) -> StoredObject:
        """Store an object: bytes, or a factory of byte chunks (``size`` when known; else it
        is measured by reading it once, when first needed)."""
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
            chunks: t.Callable[[], t.Iterable[bytes]] = lambda: [data]  # noqa: E731
            size = len(data)
        else:
            chunks = body
        stored = StoredObject(
            bucket,
            key,
            chunks,
            vendor=vendor,
            fault_path=fault_path or f"/{bucket}/{key}",
            content_type=content_type,
            content_encoding=content_encoding,
            last_modified=self.clock.now(),
            size=size,
        )
        with self.lock:
            self.objects[(bucket, key)] = stored
        return stored

    def delete(self, bucket: str, key: str) -> None:
        with self.lock:
            self.objects.pop((bucket, key), None)

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self.lock:
            return self.objects.get((bucket, key))

    # -- presigned URLs ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The first storage origin."""
        return self.origins[0]

    def presign(
        self,
        bucket: str,
        key: str,
        *,
        method: str = "GET",
        expires: int | None = None,
        origin: int = 0,
        extra: t.Mapping[str, str] | None = None,
        signed_at: dt.datetime | None = None,
    ) -> str:
        """A presigned URL of ``bucket/key`` on storage origin ``origin`` (0 or 1), valid for
        ``method`` during ``expires`` seconds from now on the storage clock."""
        base = self.origins[origin]
        moment = signed_at or self.clock.now()
        scope = f"{moment:%Y%m%d}/{self.config.region}/s3/aws4_request"
        query = {
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": f"{self.config.access_key_id}/{scope}",
            "X-Amz-Date": _amz_date(moment),
            "X-Amz-Expires": str(expires if expires is not None else self.config.expires_seconds),
            "X-Amz-SignedHeaders": "host",
            **(extra or {}),
        }
        path = "/" + _uri_encode(f"{bucket}/{key}")
        host = urlsplit(base).netloc
        query["X-Amz-Signature"] = self.signature(method, path, query, host)
        encoded = "&".join(
            f"{_uri_encode(k, slash=False)}={_uri_encode(v, slash=False)}" for k, v in query.items()
        )
        return f"{base}{path}?{encoded}"

    def signature(self, method: str, path: str, query: t.Mapping[str, str], host: str) -> str:
        """SigV4 over the canonical request: method, URI, sorted query without the signature,
        ``host`` as the one signed header, and ``UNSIGNED-PAYLOAD``."""
        canonical_query = "&".join(
            f"{_uri_encode(k, slash=False)}={_uri_encode(v, slash=False)}"
            for k, v in sorted(query.items())
            if k != "X-Amz-Signature"
        )
        canonical = "\n".join(
            [method, path, canonical_query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"]
        )
        credential = query.get("X-Amz-Credential", "")
        scope = credential.split("/", 1)[1] if "/" in credential else ""
        to_sign = "\n".join(
            [
                ALGORITHM,
                query.get("X-Amz-Date", ""),
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        day, region, service, _ = [*scope.split("/"), "", "", ""][:4]
        key = _hmac(f"AWS4{self._secret_key}".encode(), day)
        for part in (region, service, "aws4_request"):
            key = _hmac(key, part)
        return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

    # -- answering ----------------------------------------------------------------------------

    def answer(
        self, method: str, raw_path: str, raw_query: str, headers: Headers, origin: int
    ) -> tuple[Response, Fault | None, StoredObject | None]:
        """What S3 would answer; plus a fault to apply while sending, and the object read."""
        bucket, _, key = unquote(raw_path).lstrip("/").partition("/")
        resource = f"/{bucket}/{key}"
        if method not in ("GET", "HEAD"):
            message = "The specified method is not allowed against this resource."
            answer = s3_error(405, "MethodNotAllowed", message, Method=method)
            return answer, None, None
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        denied = self.check_auth(method, raw_path, query, headers)
        if denied is not None:
            return denied, None, None
        stored = self.get(bucket, key)
        if stored is None or not key:
            if self.config.missing_key_status == 404:
                return (
                    s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=key),
                    None,
                    None,
                )
            return s3_error(403, "AccessDenied", "Access Denied"), None, None
        fault = self.faults.take(stored.vendor, method, stored.fault_path) or self.faults.take(
            "storage", method, resource
        )
        hop = int(query.get(HOP_PARAM, "0") or 0)
        redirect = self.redirect_target(fault, hop, origin)
        if redirect is not None:
            location = self.presign(
                bucket, key, method=method, origin=redirect, extra={HOP_PARAM: str(hop + 1)}
            )
            return (
                Response(
                    self.config.redirect_status, b"", {"Location": location}, "application/xml"
                ),
                None,
                stored,
            )
        if fault is not None and fault.kind in badfiles.ANSWER_KINDS:
            return fault_response(fault), fault, stored
        return self.object_response(stored, headers.get("Range"), fault), fault, stored

    def check_auth(
        self, method: str, raw_path: str, query: t.Mapping[str, str], headers: Headers
    ) -> Response | None:
        """None when the request may read the object, else S3's error answer."""
        authorization = headers.get("Authorization")
        presigned = "X-Amz-Algorithm" in query
        if authorization is not None and presigned:
            return s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
                ArgumentName="Authorization",
                ArgumentValue=authorization,  # S3 echoes the header back
            )
        if authorization is not None:
            if not authorization.startswith(ALGORITHM):
                return s3_error(
                    400,
                    "InvalidArgument",
                    "Unsupported Authorization Type",
                    ArgumentName="Authorization",
                    ArgumentValue=authorization,
                )
            return signature_mismatch()
        if not presigned:
            return s3_error(403, "AccessDenied", "Access Denied")
        missing = [name for name in AUTH_PARAMS if not query.get(name)]
        if missing:
            return s3_error(
                400,
                "AuthorizationQueryParametersError",
                "Query-string "
                "authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                "and X-Amz-Expires parameters.",
            )
        if query["X-Amz-Algorithm"] != ALGORITHM:
            return s3_error(
                400,
                "AuthorizationQueryParametersError",
                'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
            )
        try:
            expires = int(query["X-Amz-Expires"])
            signed = dt.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=dt.timezone.utc
            )
        except ValueError:
            return s3_error(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Date or X-Amz-Expires is not in the expected format.",
            )
        if not 0 < expires <= MAX_EXPIRES:
            return s3_error(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            )
        now = self.clock.now()
        if now > signed + dt.timedelta(seconds=expires):
            return s3_error(
                403,
                "AccessDenied",
                "Request has expired",
                **{"X-Amz-Expires": str(expires)},
                Expires=_iso(signed + dt.timedelta(seconds=expires)),
                ServerTime=_iso(now),
            )
        if signed > now:
            return s3_error(
                403,
                "AccessDenied",
                "Request is not yet valid",
                **{"X-Amz-Date": query["X-Amz-Date"]},
                ServerTime=_iso(now),
            )
        if not query["X-Amz-Credential"].startswith(self.config.access_key_id + "/"):
            return s3_error(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                AWSAccessKeyId=query["X-Amz-Credential"].split("/")[0],
            )
        host = headers.get("Host", "")
        path = "/" + _uri_encode(unquote(raw_path).lstrip("/"))  # S3 encodes the decoded path
        expected = self.signature(method, path, query, host)
        if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
            return signature_mismatch()
        return None

    def redirect_target(self, fault: Fault | None, hop: int, origin: int) -> int | None:
        """The origin to redirect to, or None to serve."""
        other = 1 - origin if len(self.origins) > 1 else origin
        if fault is not None and fault.kind == "redirect_loop":
            return other
        if fault is not None and fault.kind == "redirect" and hop == 0:
            return other if fault.to == "other" else origin
        mode = self.config.redirect
        if mode == "loop":
            return other
        if mode in ("same", "other") and hop == 0:
            return other if mode == "other" else origin
        return None

    def object_response(
        self, stored: StoredObject, range_header: str | None, fault: Fault | None
    ) -> Response:
        """200 with the object (transformed by a bad-file fault), or 206 / 416 for a Range."""
        size, etag = stored.measure()
        response = Response(200, stored.chunks(), {}, stored.content_type, size)
        if fault is not None and fault.kind in badfiles.BODY_KINDS:
            response = badfiles.transform(response, fault)
            if response.length is None:  # measured by transforming it once more
                fresh = Response(200, stored.chunks(), {}, stored.content_type, size)
                measured = sum(len(c) for c in _chunks(badfiles.transform(fresh, fault).body))
                response = dataclasses.replace(response, length=measured)
            size = t.cast(int, response.length)
            tagged = f"{fault.kind}/{fault.encoding}/{fault.size}/{etag}".encode()
            etag = f'"{hashlib.md5(tagged, usedforsecurity=False).hexdigest()}"'
        response.headers.update(
            {
                "Accept-Ranges": "bytes",
                "ETag": etag,
                "Last-Modified": http_date(stored.last_modified),
                "x-amz-request-id": token_source.token_hex(8).upper(),
            }
        )
        if stored.content_encoding and "Content-Encoding" not in response.headers:
            response.headers["Content-Encoding"] = stored.content_encoding
        wanted = parse_range(range_header, size)
        if wanted is None:
            return response
        if isinstance(wanted, str):
            answer = s3_error(
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
                RangeRequested=str(range_header),
                ActualObjectSize=str(size),
            )
            answer.headers["Content-Range"] = f"bytes */{size}"
            return answer
        first, last = wanted
        body = slice_chunks(_chunks(response.body), first, last + 1)
        response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return Response(206, body, response.headers, response.content_type, last - first + 1)

    # -- the request log ----------------------------------------------------------------------

    def record(self, entry: LoggedRequest) -> None:
        with self.lock:
            self.log.append(entry)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request any storage origin received, in order."""
        with self.lock:
            return list(self.log)

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    def credential_leaks(self, secrets: t.Iterable[str] | None = None) -> list[Leak]:
        """Storage requests that carried an ``Authorization`` or ``public-api-key`` header, or
        any of ``secrets`` (default: every vendor credential the simulator hands out) in any
        form (see ``secret_forms``) in a header, the query or the path."""
        forms = secret_forms(self.default_secrets() if secrets is None else secrets)
        leaks = []
        for entry in self.requests:
            reasons = request_leaks(entry, forms)
            if reasons:
                leaks.append(Leak(entry, reasons))
        return leaks

    def control(self, request: Request) -> Response | None:
        """``/_sim/storage/...``: requests, leaks (``?secret=`` adds values to look for),
        reset-log, clock (``{"advance_seconds": N}`` or ``{"now": ISO | null}``), config."""
        if request.path == "/requests":
            return json_response([entry.to_dict() for entry in self.requests])
        if request.path == "/leaks":
            extra = request.query.get("secret", [])
            found = self.credential_leaks([*self.default_secrets(), *extra])
            return json_response([leak.to_dict() for leak in found])
        if request.path == "/reset-log" and request.method == "POST":
            self.reset_log()
            return json_response({"ok": True})
        if request.path == "/clock" and request.method == "POST":
            spec = request.json() or {}
            if "now" in spec:
                moment = spec["now"]
                self.clock.set(None if moment is None else dt.datetime.fromisoformat(moment))
            self.clock.advance(float(spec.get("advance_seconds", 0)))
            return json_response({"now": self.clock.now().isoformat()})
        if request.path == "/config":
            values = json.loads(request.body or b"{}") if request.method == "POST" else {}
            return set_switches(self.config, values)
        if request.path == "/objects":
            with self.lock:
                names = [f"{bucket}/{key}" for bucket, key in self.objects]
            return json_response(names)
        return error(404, f"no storage control endpoint {request.path}")


def _chunks(body: bytes | t.Iterable[bytes]) -> t.Iterable[bytes]:
    return [bytes(body)] if isinstance(body, (bytes, bytearray)) else body


def parse_range(
    header: str | None, size: int
) -> tuple[int, int] | t.Literal["unsatisfiable"] | None:
    """RFC 9110 byte ranges as S3 reads them: (first, last) inclusive, "unsatisfiable", or
    None (no Range, a malformed one, or several ranges: the whole object is served)."""
    if header is None:
        return None
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    start, end = match.groups()
    if start == "":  # the last N bytes
        count = int(end)
        if count == 0 or size == 0:
            return "unsatisfiable"
        return max(size - count, 0), size - 1
    first = int(start)
    last = size - 1 if end == "" else min(int(end), size - 1)
    if end != "" and int(end) < first:
        return None  # "bytes=5-2" is not a valid range: ignored
    if first >= size:
        return "unsatisfiable"
    return first, last


def slice_chunks(chunks: t.Iterable[bytes], start: int, stop: int) -> t.Iterator[bytes]:
    """Bytes ``start`` to ``stop`` (exclusive) of a chunk stream: generate and skip."""
    position = 0
    for chunk in chunks:
        end = position + len(chunk)
        if end > start and position < stop:
            yield chunk[max(start - position, 0) : min(stop - position, len(chunk))]
        position = end
        if position >= stop:
            return


class StorageServer(ThreadingHTTPServer):
    """One storage origin on 127.0.0.1: answers for ``storage``, records every request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], storage: ObjectStorage) -> None:
        super().__init__(address, StorageHandler)
        self.storage = storage
        self.index = len(storage.origins)
        storage.origins.append(self.url)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class StorageHandler(SimHandler):
    server: StorageServer  # type: ignore[assignment]

    def handle_any(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        storage = self.server.storage
        response, fault, _ = storage.answer(
            self.command, split.path, split.query, self.headers, self.server.index
        )
        storage.record(
            LoggedRequest(
                "storage",
                self.command,
                unquote(split.path),
                split.query,
                response.status,
                list(self.headers.items()),
                self.server.url,
            )
        )
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "reset":
            self.reset()
            return
        try:
            self.send(response, head=self.command == "HEAD", fault=fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
