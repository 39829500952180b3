"""The simulator's HTTP server: routing by vendor prefix, auth, faults, request log, control.

Each vendor is a ``VendorApp`` mounted under its own path prefix (``/indicative``,
``/artisan``, ...), so one server on one loopback port plays every vendor and each vendor's
base URL is ``http://127.0.0.1:PORT/<prefix>``. A vendor app declares its routes
(method + regex on the path below its prefix) and its auth check; the server logs every
request, applies any fault switched on for it, and answers.

Control endpoints for tests in other processes live under ``/_sim``: ``GET /_sim/truth``,
``GET /_sim/requests``, ``POST /_sim/reset-log``, ``POST /_sim/faults`` (one fault spec or a
list; ``GET`` lists them, ``DELETE`` clears them) and whatever a vendor adds under
``/_sim/<vendor>/...``. Control requests are not logged; requests to an unmounted prefix are
(vendor ``""``, status 404).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from simulator.faults import Fault, FaultSet

Body = bytes | t.Iterable[bytes]


class BadRequest(ValueError):
    """A request the vendor would refuse with 400 (unparseable body, missing field)."""


@dataclass
class Request:
    """What a route handler sees."""

    method: str
    path: str  # below the vendor prefix
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    match: re.Match[str] | None = None
    base_url: str = ""  # http://127.0.0.1:PORT/<prefix>

    def json(self) -> t.Any:
        """The body parsed as JSON (None when empty); ``BadRequest`` when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from None

    def json_object(self) -> dict[str, t.Any]:
        """The body as a JSON object ({} when empty); ``BadRequest`` otherwise."""
        value = self.json()
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise BadRequest("body must be a JSON object")
        return value

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Body = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def json_response(value: t.Any, status: int = 200, **headers: str) -> Response:
    return Response(status, json.dumps(value).encode(), dict(headers))


def error(status: int, message: str) -> Response:
    return json_response({"error": message, "status": status}, status)


Handler = t.Callable[[Request], Response]


class VendorApp:
    """A vendor's API: its prefix, auth and routes. Subclasses fill ``routes``."""

    prefix: str = ""
    name: str = ""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

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
                except BadRequest as exc:
                    return error(400, str(exc))
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


@dataclass
class LoggedRequest:
    vendor: str
    method: str
    path: str
    query: str
    status: int

    def to_dict(self) -> dict[str, t.Any]:
        return self.__dict__.copy()


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

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        """A client hanging up (keep-alive closed, download abandoned) is not an error."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

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
            self.server.record(LoggedRequest("", self.command, split.path, split.query, 404))
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
        if fault is not None and fault.kind in ("status", "html", "reset"):
            response = fault_response(fault)
        else:
            response = app.dispatch(request)
        self.server.record(
            LoggedRequest(app.name, self.command, rest, split.query, response.status)
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
            return self.add_faults(body)
        if path == "/faults" and self.command == "GET":
            return json_response(server.faults.list())
        if path == "/faults" and self.command == "DELETE":
            server.faults.clear()
            return json_response([])
        vendor, _, rest = path.lstrip("/").partition("/")
        app = server.apps.get(vendor)
        if app is not None:
            request = Request(self.command, "/" + rest, self.query, self.headers, body)
            try:
                handled = app.control(request)
            except BadRequest as exc:
                return error(400, str(exc))
            if handled is not None:
                return handled
        return error(404, f"no control endpoint {path}")

    def add_faults(self, body: bytes) -> Response:
        """``POST /_sim/faults``: one fault spec (JSON object) or a list of them."""
        try:
            spec = json.loads(body or b"{}")
            for item in spec if isinstance(spec, list) else [spec]:
                self.server.faults.add(**item)
        except (TypeError, ValueError) as exc:  # not JSON, unknown kind or option
            return error(400, f"bad fault spec: {exc}")
        return json_response(self.server.faults.list())

    def send(self, response: Response, *, head: bool, fault: Fault | None = None) -> None:
        self.send_response(response.status)
        self.send_header(
            "Content-Type", response.headers.pop("Content-Type", response.content_type)
        )
        for name, value in response.headers.items():
            self.send_header(name, value)
        body = response.body
        if isinstance(body, (bytes, bytearray)):
            if fault is not None and fault.kind == "truncated_json":
                self.send_header("Content-Length", str(len(body) // 2))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                return
            if fault is not None and fault.kind == "cut_download":
                self.send_header("Content-Length", str(len(body)))  # promises more than sent
                self.end_headers()
                self.wfile.write(body[: min(fault.after_bytes, len(body) // 2)])
                self.reset()
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if head:
            return
        self.stream_chunked(
            body, cut_after=fault.after_bytes if fault and fault.kind == "cut_download" else None
        )

    def stream_chunked(self, chunks: t.Iterable[bytes], cut_after: int | None) -> None:
        sent = 0
        for chunk in chunks:
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
    if fault.kind == "html":
        page = f"<html><head><title>{fault.status}</title></head><body>Error</body></html>"
        return Response(fault.status, page.encode(), content_type="text/html")
    if fault.kind == "reset":
        return Response(0)
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    body = (fault.body or json.dumps({"error": f"simulated {fault.status}"})).encode()
    return Response(fault.status, body, headers)
