"""The HTTP side of the IBM Cloud double: TLS on 127.0.0.1, routing, bearer tokens, faults.

One server answers for IAM, the platform API (spaces, software specifications), Watson
Machine Learning v4 and Watson OpenScale v2, because the clients take each base URL as a
setting and the paths do not overlap. State lives in ``IbmCloudState`` objects (``wml``,
``openscale``); a test reads it afterwards or tells the server to misbehave:

    double.fail("POST", r"/ml/v4/deployments", status=500, times=1)
    double.delay("GET", r"/v2/spaces", seconds=3)
    double.throttle("POST", r"/ml/v4/deployments", retry_after=1, times=2)

Tokens expire: a request whose bearer token is past its ``exp`` claim is refused with 401,
as IBM's services refuse an expired IAM access token (IAM Identity Services API, "Create an
IAM access token for an API key": ``expires_in``/``expiration``, 3600 s on IBM Cloud); the
clients must refresh in time (ibm-cloud-sdk-core 3.25.0 ``token_managers/jwt_token_manager.py``
refreshes at 80 % of the lifetime, ibm-watsonx-ai 1.8.1
``utils/auth/base_auth/refreshable_token_auth.py`` before ``exp``). A throttled call answers
429 with a ``Retry-After`` header in seconds, which IBM's SDK core honours when retries are
on (ibm-cloud-sdk-core 3.25.0 ``base_service.py`` ``enable_retries``).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.doubles.ibm_cloud.tls import self_signed


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Answered as IBM's error envelope: ``{"errors": [{"code", "message"}], "trace"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


Handler = Callable[..., Reply]


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None  # None: answer normally after the delay
    times: int  # how many matching calls misbehave; -1: all of them
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, request: Request) -> bool:
        return (
            self.times != 0
            and request.method == self.method
            and self.pattern.fullmatch(request.path) is not None
        )


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []

    def add(self, method: str, pattern: str, handler: Handler, *, auth: bool = True) -> None:
        self.routes.append((method, re.compile(pattern), handler, auth))

    def find(self, request: Request) -> tuple[Handler, dict[str, str], bool]:
        allowed = []
        for method, pattern, handler, auth in self.routes:
            match = pattern.fullmatch(request.path)
            if match:
                if method == request.method:
                    return handler, match.groupdict(), auth
                allowed.append(method)
        if allowed:
            raise ApiError(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.path}"
            )
        raise ApiError(404, "not_found", f"no such resource: {request.path}")


class DoubleServer:
    """A threaded HTTPS server on a free loopback port; ``url`` is its base URL."""

    def __init__(self, router: Router, tokens: dict[str, float], folder: Path) -> None:
        self.router = router
        self.tokens = tokens  # access token -> its expiry (epoch seconds, the "exp" claim)
        self.refused_expired = 0  # requests refused for an expired token
        self.log: list[tuple[str, str, dict[str, str], Any]] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()  # one request at a time changes state
        self.cert, key = self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        handler = type("Handler", (_Handler,), {"double": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        # shutdown() waits for the serving loop's next poll: 0.5 s by default, per test
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="ibm-double", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    # -- faults ---------------------------------------------------------------------------
    def fail(self, method: str, path: str, *, status: int = 500, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` on a path matching ``path`` get ``status``."""
        self.faults.append(Fault(method, re.compile(path), status, times))

    def delay(self, method: str, path: str, *, seconds: float, times: int = -1) -> None:
        """Matching calls answer only after ``seconds`` (a client's own timeout may fire)."""
        self.faults.append(Fault(method, re.compile(path), None, times, seconds))

    def throttle(self, method: str, path: str, *, retry_after: int, times: int = 1) -> None:
        """The next ``times`` matching calls get 429 Too Many Requests, Retry-After seconds."""
        self.faults.append(
            Fault(
                method, re.compile(path), 429, times, headers={"Retry-After": str(int(retry_after))}
            )
        )

    def heal(self) -> None:
        """Forget every injected fault."""
        with self.lock:
            self.faults.clear()

    def _fault(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(request):
                    fault.times -= 1 if fault.times > 0 else 0
                    return fault
        return None

    # -- one request ----------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        self.log.append((request.method, request.path, request.query, request.raw))
        fault = self._fault(request)
        if fault is not None:
            if fault.seconds:
                time.sleep(fault.seconds)  # the fault *is* a slow service
            if fault.status is not None:
                reply = error(
                    fault.status,
                    "injected_fault",
                    f"injected failure of {request.method} {request.path}",
                )
                reply.headers.update(fault.headers)
                return reply
        try:
            handler, params, auth = self.router.find(request)
            if auth:
                self._authorize(request)
            with self.lock:
                return handler(request, **params)
        except ApiError as exc:
            return error(exc.status, exc.code, str(exc))

    def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            raise ApiError(401, "authorization_rejected", "a valid IAM bearer token is required")
        if time.time() > self.tokens[token]:
            self.refused_expired += 1
            raise ApiError(401, "authentication_token_expired", "the IAM access token has expired")


def error(status: int, code: str, message: str) -> Reply:
    return Reply(
        status,
        {
            "errors": [{"code": code, "message": message}],
            "trace": "ibm-cloud-double",
            "status_code": status,
        },
    )


class _Handler(BaseHTTPRequestHandler):
    double: DoubleServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet)
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        request = Request(
            self.command,
            parts.path.rstrip("/") or "/",
            query,
            {k.lower(): v for k, v in self.headers.items()},
            raw,
        )
        reply = self.double.handle(request)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        # no idle keep-alive sockets left in the clients' pools when the double stops
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
