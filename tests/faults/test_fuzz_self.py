"""The fuzzer itself: it must flag a careless endpoint and pass a careful one."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.faults.fuzz import fuzz_endpoint

pytestmark = pytest.mark.faults
EXAMPLE = {"instances": [[1.0, 2.0]]}


def _reply(
    handler: BaseHTTPRequestHandler, code: int, body: str, content_type: str = "application/json"
) -> None:
    data = body.encode()
    handler.send_response(code)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class Careless(BaseHTTPRequestHandler):
    """Trusts its input: crashes on bad JSON and answers NaN in a 'JSON' body."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            rows = json.loads(raw)["instances"]
            total = sum(sum(r) for r in rows) * 1e308
            _reply(self, 200, json.dumps({"predictions": [total - total]}))
        except Exception as exc:  # a 500 with a plain-text message
            _reply(self, 500, f"boom: {exc}", "text/plain")

    def log_message(self, *args: object) -> None:
        pass


class Careful(BaseHTTPRequestHandler):
    def _fail(self, code: int, message: str) -> None:
        _reply(self, code, json.dumps({"error": message}))

    def do_POST(self) -> None:  # noqa: N802
        if self.headers.get("Content-Type") != "application/json":
            return self._fail(415, "send application/json")
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except (ValueError, RecursionError) as exc:
            return self._fail(400, f"not JSON: {type(exc).__name__}")
        if not isinstance(body, dict) or set(body) != {"instances"}:
            return self._fail(400, "expected exactly {'instances': [[x, y], ...]}")
        rows = body["instances"]
        ok = (
            isinstance(rows, list)
            and rows
            and all(
                isinstance(r, list)
                and len(r) == 2
                and all(
                    isinstance(v, float | int) and not isinstance(v, bool) and abs(v) < 1e6
                    for v in r
                )
                for r in rows
            )
        )
        if not ok:
            return self._fail(400, "instances must be rows of two finite numbers below 1e6")
        preds = [float(sum(r)) for r in rows]
        assert all(math.isfinite(p) for p in preds)
        _reply(self, 200, json.dumps({"predictions": preds}))

    def _method_not_allowed(self) -> None:
        self._fail(405, "POST only")

    do_GET = do_PUT = do_DELETE = do_PATCH = _method_not_allowed  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/predict"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def careless_url() -> Iterator[str]:
    yield from _serve(Careless)


@pytest.fixture
def careful_url() -> Iterator[str]:
    yield from _serve(Careful)


def test_fuzzer_flags_a_careless_endpoint(careless_url: str) -> None:
    report = fuzz_endpoint(careless_url, EXAMPLE)
    assert report.cases >= 22
    assert report.n5xx > 0
    assert any("not JSON" in line and "200" in line for line in report.bad), report.bad


def test_fuzzer_passes_a_careful_endpoint(careful_url: str) -> None:
    report = fuzz_endpoint(careful_url, EXAMPLE)
    assert report.cases >= 22
    assert report.n5xx == 0 and not report.bad, report.bad
    assert report.n4xx >= 20
