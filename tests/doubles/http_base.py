"""One HTTP base for every test double: a threaded server on loopback, shaped like moto's.

A double is a subclass of ``HttpDouble`` that keeps its state in state objects (dataclasses
whose methods are the service's state changes, like moto's backends) and adds *thin* routes:
a route parses the request, calls one state method and wraps the result in a ``Reply``.
The base does everything else, the same way for every double:

- routing: ``route(method, path_pattern, handler)``; a named group in the pattern is passed
  to the handler as a keyword; an unknown path answers 404, a known path with another
  method 405;
- JSON: ``request.json()`` (a body that is not JSON is a 400), ``Reply(status, body)``
  encodes the body; every error is ``ApiError(status, code, message)``, answered in the
  provider's own error shape (``error_body``);
- a request log (``log``, ``calls(method, pattern)``) that tests read;
- one fault-injection convention (``faults.inject(...)``, ``faults.clear()``): the next
  ``times`` calls matching a method and a path pattern (after ``skip`` matching calls that
  pass) answer ``status`` with ``message`` in the provider's error shape, optionally with a
  ``Retry-After`` header or only after ``delay`` seconds (a slow service);
- ``start()``/``stop()`` or ``with double:``; the stop is bounded (``mlops_helpers.waiting``)
  and closes every connection (``Connection: close``), so no client pool keeps a socket to
  a stopped double.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from mlops_helpers.waiting import wait_until


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query and without a trailing slash
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    raw: bytes
    target: str = ""  # the request line's target as sent (path and query), for a proxy

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body as JSON (None when empty); not JSON is the caller's fault: 400."""
        if not self.raw:
            return None
        try:
            return json.loads(self.raw)
        except ValueError as exc:
            raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-encoded, unless bytes (sent as they are)
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """A 4xx (or an injected 5xx), answered in the double's provider error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


Handler = Callable[..., Reply]
T = TypeVar("T")


def lookup(items: Mapping[str, T], key: str, message: str, code: str = "not_found") -> T:
    """``items[key]``; a missing one is the provider's 404 with ``message``."""
    found = items.get(key)
    if found is None:
        raise ApiError(404, code, message)
    return found


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]  # matched against the whole path
    status: int | None  # None: answer normally, after the delay
    message: str | None  # None: "injected failure of <method> <path>"
    times: int  # how many matching calls misbehave; -1: all of them
    skip: int = 0  # matching calls let through first
    delay: float = 0.0  # seconds before answering
    retry_after: int | None = None  # a Retry-After header, in seconds


class Faults:
    """The one fault-injection convention of every double."""

    def __init__(self) -> None:
        self._queue: list[Fault] = []
        self._lock = threading.Lock()

    def inject(
        self,
        method: str,
        path: str,
        *,
        status: int | None = 500,
        message: str | None = None,
        times: int = 1,
        skip: int = 0,
        delay: float = 0.0,
        retry_after: int | None = None,
    ) -> None:
        """After ``skip`` matching calls, the next ``times`` calls of ``method`` on a path
        matching the pattern ``path`` answer ``status`` (None: normally, after ``delay``)."""
        fault = Fault(method, re.compile(path), status, message, times, skip, delay, retry_after)
        with self._lock:
            self._queue.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, request: Request) -> Fault | None:
        """The fault this request meets, counted off its queue entry."""
        with self._lock:
            for fault in self._queue:
                if (
                    fault.times == 0
                    or fault.method != request.method
                    or not fault.path.fullmatch(request.path)
                ):
                    continue
                if fault.skip:
                    fault.skip -= 1
                    continue
                fault.times -= 1 if fault.times > 0 else 0
                return fault
        return None


class HttpDouble:
    """A stateful service double on a free 127.0.0.1 port; subclasses add routes."""

    name = "double"

    def __init__(self, *, tls_folder: Path | None = None) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self.faults = Faults()
        self.log: list[Request] = []
        self.lock = threading.RLock()  # one request at a time changes state
        handler = type("Handler", (_Handler,), {"double": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        scheme = "http"
        self.cert: Path | None = None
        if tls_folder is not None:
            from tests.doubles.tls import self_signed

            self.cert, key = self_signed(tls_folder)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, key)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self.port = int(self._httpd.server_address[1])
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        # shutdown() waits for the serving loop's next poll (0.5 s by default)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name=self.name, daemon=True
        )

    # -- the route table ------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler, *, public: bool = False) -> None:
        """``handler(request, **groups)`` answers ``method`` on paths matching ``pattern``;
        ``public`` routes skip ``authorize``."""
        self.routes.append((method, re.compile(pattern), handler, public))

    def _find(self, request: Request) -> tuple[Handler, dict[str, str], bool]:
        allowed = []
        for method, pattern, handler, public in self.routes:
            match = pattern.fullmatch(request.path)
            if match:
                if method == request.method:
                    return handler, match.groupdict(), public
                allowed.append(method)
        if allowed:
            raise ApiError(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.path}"
            )
        raise ApiError(404, "not_found", f"no such resource: {request.path}")

    # -- what a provider's double overrides -------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Raise ApiError(401) unless the request carries valid credentials."""

    def before(self, request: Request) -> None:
        """Called for every request (under the lock) before it is answered: time passes."""

    def error_body(self, request: Request, error: ApiError) -> Any:
        """The provider's error shape."""
        return {"error": {"code": error.code, "message": error.message}}

    # -- one request ----------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.log.append(request)
            self.before(request)
        fault = self.faults.take(request)
        try:
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)  # the fault *is* a slow service
                if fault.status is not None:
                    headers = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = str(int(fault.retry_after))
                    message = fault.message or (
                        f"injected failure of {request.method} {request.path}"
                    )
                    error = ApiError(fault.status, "injected_fault", message)
                    return Reply(fault.status, self.error_body(request, error), headers)
            handler, params, public = self._find(request)
            with self.lock:
                if not public:
                    self.authorize(request)
                return handler(request, **params)
        except ApiError as exc:
            return Reply(exc.status, self.error_body(request, exc))

    def calls(self, method: str, pattern: str) -> int:
        """How many requests of ``method`` had a path matching ``pattern``."""
        return sum(1 for r in self.log if r.method == method and re.fullmatch(pattern, r.path))

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            # shutdown() blocks until the loop ends: ask from aside, wait a bounded time
            threading.Thread(target=self._httpd.shutdown, daemon=True).start()
            wait_until(
                lambda: not self._thread.is_alive(),
                what=f"the {self.name} double to stop",
                timeout=10,
                interval=0.02,
                progress=False,
            )
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    double: HttpDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet: tests read .log)
        pass

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, then the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path.rstrip("/") or "/",
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            self._body(),
            self.path,
        )
        try:
            reply = self.double.handle(request)
        except Exception as exc:  # a bug in the double: say it, do not hang the client
            reply = Reply(500, {"error": f"{self.double.name} double: {exc!r}"})
        body = reply.body
        payload = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body)
        payload = payload.encode() if isinstance(payload, str) else payload
        self.send_response(reply.status)
        headers = dict(reply.headers)
        if payload and "content-type" not in {k.lower() for k in headers}:
            headers["Content-Type"] = "application/json"
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        # a HEAD answer names the length the GET would have (S3's HeadObject reads it)
        length = headers.get("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(payload)))
        # no idle keep-alive sockets left in the clients' pools when the double stops
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve
