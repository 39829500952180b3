"""The simulator's HTTP server: routing by vendor prefix, auth, faults, request log, control.

Each vendor is a ``VendorApp`` mounted under its own path prefix (``/indicative``,
``/artisan``, ...), so one server on one loopback port plays every vendor and each vendor's
base URL is ``http://127.0.0.1:PORT/<prefix>``. A vendor app declares its routes
(method + regex on the path below its prefix) and its auth check; the server logs every
request, applies any fault switched on for it, and answers.

Control endpoints for tests in other processes live under ``/_sim``: ``GET /_sim/truth``,
``GET /_sim/requests``, ``POST /_sim/faults``, ``POST /_sim/reset-log``, ``POST
/_sim/<prefix>/config`` (set switches of a vendor's config), whatever a vendor adds under
``/_sim/<prefix>/...`` and the storage server's ``/_sim/storage/...`` (see
``simulator.storage``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import socket
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from simulator import badfiles
from simulator.faults import Fault, FaultSet

Body = bytes | t.Iterable[bytes]


@dataclass
class Request:
    """What a route handler sees."""

    method: str
    path: str  # below the vendor prefix
    query: dict[str, list[str]]
    headers: t.Mapping[str, str]
    body: bytes
    match: re.Match[str] | None = None
    base_url: str = ""  # http://127.0.0.1:PORT/<prefix>

    def json(self) -> t.Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Body = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    #: The length of an iterable body, when known: sent as Content-Length instead of chunked.
    length: int | None = None


def json_response(value: t.Any, status: int = 200, **headers: str) -> Response:
    return Response(status, json.dumps(value).encode(), dict(headers))


def error(status: int, message: str) -> Response:
    return json_response({"error": message, "status": status}, status)


Handler = t.Callable[[Request], Response]


def http_date(moment: dt.datetime) -> str:
    """``Tue, 15 Nov 1994 08:12:31 GMT``, the form of HTTP's ``Date`` and ``Retry-After``."""
    return format_datetime(moment.astimezone(dt.timezone.utc), usegmt=True)


class VendorApp:
    """A vendor's API: its prefix, auth and routes. Subclasses fill ``routes``."""

    prefix: str = ""
    name: str = ""
    #: Seconds the vendor's clock is ahead of ours: its ``Date`` header says now + skew.
    clock_skew_seconds: float = 0.0

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        #: The result-file storage (``simulator.storage.ObjectStorage``), set by ``Simulator``.
        self.storage: t.Any = None

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def authorized(self, request: Request) -> bool:
        return True

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                if not self.authorized(request):
                    return error(401, "Unauthorized: credentials could not be validated")
                request.match = match
                try:
                    return handler(request)
                except json.JSONDecodeError:
                    return error(400, "the request body is not valid JSON")  # our choice
        return error(405 if allowed else 404, f"no route for {request.method} {request.path}")

    def tap_config(self, base_url: str) -> dict[str, t.Any]:
        return {}

    def truth(self, *, rerun: bool = False) -> dict[str, int]:
        """Exact record counts per stream the tap should emit (``rerun``: in total, after a
        second, incremental run that follows a first full one)."""
        return {}

    def control(self, request: Request) -> Response | None:
        """``/_sim/<vendor>/...`` endpoints; None when not handled."""
        return None

    def settings(self) -> t.Any:
        """The config dataclass whose switches ``POST /_sim/<prefix>/config`` sets."""
        return getattr(self, "config", None)


def set_switches(config: t.Any, values: t.Mapping[str, t.Any]) -> Response:
    """Set fields of a config dataclass from a JSON object; unknown names are a 400."""
    if config is None or not dataclasses.is_dataclass(config):
        return error(404, "no switches here")
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(values) - names)
    if unknown:
        return error(400, f"unknown switches {unknown}; known: {sorted(names)}")
    for name, value in values.items():
        setattr(config, name, value)
    switches = dataclasses.asdict(config)
    return json_response({name: _shown(value) for name, value in switches.items()})


def _shown(value: t.Any) -> t.Any:
    """A switch's value as JSON: sets sorted (ints and strings may mix), functions by name."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda item: (str(type(item)), item))
    return repr(value) if callable(value) else value


@dataclass
class LoggedRequest:
    """One request a server answered, with every header as sent (names as the client wrote
    them, repeated headers kept)."""

    vendor: str
    method: str
    path: str
    query: str
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    origin: str = ""  # http://127.0.0.1:PORT of the server that answered

    def to_dict(self) -> dict[str, t.Any]:
        return {**self.__dict__, "headers": [list(pair) for pair in self.headers]}

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), else None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], apps: t.Sequence[VendorApp]) -> None:
        super().__init__(address, SimHandler)
        self.apps = {app.prefix: app for app in apps}
        self.faults = FaultSet()
        self.log: list[LoggedRequest] = []
        self.log_lock = threading.Lock()
        self.truth: t.Callable[..., dict[str, int]] = lambda **_: {}
        #: Extra ``/_sim/<name>/...`` control namespaces (the storage server's, for one).
        self.controls: dict[str, t.Callable[[Request], Response | None]] = {}

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        """A client hanging up (keep-alive closed, download abandoned) is not an error."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, entry: LoggedRequest) -> None:
        with self.log_lock:
            self.log.append(entry)


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimServer

    def log_message(self, format: str, *args: t.Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self.handle_any()

    def do_POST(self) -> None:
        self.handle_any()

    def do_PUT(self) -> None:
        self.handle_any()

    def do_DELETE(self) -> None:
        self.handle_any()

    def do_HEAD(self) -> None:
        self.handle_any()

    def handle_any(self) -> None:
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        segments = split.path.lstrip("/").split("/", 1)
        prefix, rest = segments[0], "/" + (segments[1] if len(segments) > 1 else "")
        if prefix == "_sim":
            self.send(self.control(rest, body), head=False)
            return
        app = self.server.apps.get(prefix)
        if app is None:
            self.send(error(404, f"no vendor mounted at /{prefix}"), head=False)
            return
        request = Request(
            method=self.command,
            path=rest,
            query=parse_qs(split.query),
            headers=self.headers,
            body=body,
            base_url=f"{self.server.url}/{prefix}",
        )
        fault = self.server.faults.take(app.name, self.command, rest)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.kind in badfiles.ANSWER_KINDS:
            response = fault_response(fault)
        else:
            response = app.dispatch(request)
        if fault is not None and fault.kind in badfiles.BODY_KINDS and response.status == 200:
            response = badfiles.transform(response, fault)
        if app.clock_skew_seconds and "Date" not in response.headers:
            skewed = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=app.clock_skew_seconds)
            response.headers["Date"] = http_date(skewed)
        self.server.record(
            LoggedRequest(
                app.name,
                self.command,
                rest,
                split.query,
                response.status,
                list(self.headers.items()),
                self.server.url,
            )
        )
        if fault is not None and fault.kind == "reset":
            self.reset()
            return
        first_bytes = requested_prefix(self.headers.get("Range"))
        if first_bytes is not None and response.status == 200:
            response = prefix_response(response, first_bytes)
        try:
            self.send(response, head=self.command == "HEAD", fault=fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up: nothing more to say

    def control(self, path: str, body: bytes) -> Response:
        server = self.server
        if path == "/truth":
            return json_response(server.truth(rerun="rerun" in self.query))
        if path == "/requests":
            with server.log_lock:
                return json_response([entry.to_dict() for entry in server.log])
        if path == "/reset-log" and self.command == "POST":
            with server.log_lock:
                server.log.clear()
            return json_response({"ok": True})
        if path == "/faults" and self.command == "POST":
            spec = json.loads(body or b"{}")
            specs = spec if isinstance(spec, list) else [spec]
            for item in specs:
                server.faults.add(**item)
            return json_response(server.faults.list())
        if path == "/faults" and self.command == "DELETE":
            server.faults.clear()
            return json_response([])
        vendor, _, rest = path.lstrip("/").partition("/")
        request = Request(self.command, "/" + rest, self.query, self.headers, body)
        if vendor in server.controls:
            handled = server.controls[vendor](request)
            if handled is not None:
                return handled
        app = server.apps.get(vendor)
        if app is not None:
            if request.path == "/config" and self.command == "POST":
                return set_switches(app.settings(), json.loads(body or b"{}"))
            if request.path == "/config" and self.command == "GET":
                return set_switches(app.settings(), {})
            handled = app.control(request)
            if handled is not None:
                return handled
        return error(404, f"no control endpoint {path}")

    def send(self, response: Response, *, head: bool, fault: Fault | None = None) -> None:
        date = response.headers.pop("Date", None) or self.date_time_string()
        self.send_response_only(response.status)
        self.send_header("Server", self.version_string())
        self.send_header("Date", date)
        self.send_header(
            "Content-Type", response.headers.pop("Content-Type", response.content_type)
        )
        for name, value in response.headers.items():
            self.send_header(name, value)
        kind = fault.kind if fault is not None else None
        body = response.body
        length = response.length
        if isinstance(body, (bytes, bytearray)):
            if kind == "truncated_json":
                self.send_header("Content-Length", str(len(body) // 2))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                return
            length, body = len(body), [bytes(body)]
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if head:
                return
            self.stream_chunked(
                badfiles.trickle(body, fault) if fault and kind == "trickle" else body,
                cut_after=fault.after_bytes if fault and kind == "cut_download" else None,
            )
            return
        self.send_header("Content-Length", str(length))  # a cut download promises more
        self.end_headers()
        if head:
            return
        if fault is not None and kind == "cut_download":
            body = badfiles.first_bytes(body, min(fault.after_bytes, length // 2))
            body = [*body, badfiles.CUT]
        elif fault is not None and kind == "trickle":
            body = badfiles.trickle(body, fault)
        self.write_raw(body)

    def write_raw(self, chunks: t.Iterable[bytes]) -> None:
        """Write a fixed-length body; a ``badfiles.CUT`` marker closes the connection there."""
        for chunk in chunks:
            if chunk is badfiles.CUT:
                self.reset()
                return
            self.wfile.write(chunk)
            if isinstance(chunk, badfiles.Tick):
                self.wfile.flush()  # a trickle: each bit leaves at once

    def stream_chunked(self, chunks: t.Iterable[bytes], cut_after: int | None) -> None:
        """Write ``chunks`` in chunked encoding; cut after ``cut_after`` bytes, or at a
        ``badfiles.CUT`` marker, without the terminating chunk."""
        sent = 0
        for chunk in chunks:
            if chunk is badfiles.CUT:
                self.reset()
                return
            if not chunk:
                continue
            if cut_after is not None and sent + len(chunk) >= cut_after:
                part = chunk[: max(cut_after - sent, 0)]
                if part:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                self.reset()  # no terminating chunk: the client sees a broken body
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if isinstance(chunk, badfiles.Tick):
                self.wfile.flush()
            sent += len(chunk)
        self.wfile.write(b"0\r\n\r\n")

    def reset(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def requested_prefix(header: str | None) -> int | None:
    """Bytes asked for by ``Range: bytes=0-N`` (the only form clients here send), else None."""
    match = re.fullmatch(r"bytes=0-(\d+)", (header or "").strip())
    return int(match.group(1)) + 1 if match else None


def prefix_response(response: Response, size: int) -> Response:
    """A 206 answer holding the first ``size`` bytes of ``response``'s body."""
    body = response.body
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body[:size])
    else:
        collected = bytearray()
        for chunk in body:
            collected += chunk
            if len(collected) >= size:
                break
        data = bytes(collected[:size])
    headers = {**response.headers, "Content-Range": f"bytes 0-{len(data) - 1}/*"}
    return Response(206, data, headers, response.content_type)


def fault_response(fault: Fault) -> Response:
    """The answer a fault gives instead of the vendor's (kinds in ``badfiles.ANSWER_KINDS``)."""
    if fault.kind == "html":
        page = f"<html><head><title>{fault.status}</title></head><body>Error</body></html>"
        return Response(fault.status, page.encode(), content_type="text/html")
    if fault.kind == "proxy_page":
        return Response(fault.status, badfiles.PROXY_502_PAGE, content_type="text/html")
    if fault.kind == "xml_error":
        return Response(fault.status, badfiles.S3_ERROR_DOCUMENT, content_type="application/xml")
    if fault.kind == "reset":
        return Response(0)
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.retry_after_date is not None or fault.date_skew:
        # The server's clock is ``date_skew`` seconds off ours; its Retry-After names a moment
        # ``retry_after_date`` seconds after its own Date, so only Retry-After - Date is right.
        server_now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=fault.date_skew)
        headers["Date"] = http_date(server_now)
        if fault.retry_after_date is not None:
            later = server_now + dt.timedelta(seconds=fault.retry_after_date)
            headers["Retry-After"] = http_date(later)
    body = (fault.body or json.dumps({"error": f"simulated {fault.status}"})).encode()
    return Response(fault.status, body, headers)
