"""The one HTTP base of the test doubles (tests/doubles/http_base.py), through a real client:
routing, JSON errors in the provider's shape, the request log, the fault convention, the stop."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.doubles.http_base import ApiError, HttpDouble, Reply, Request, lookup


class Shelf(HttpDouble):
    """A toy provider: items by id, its own error shape, a token on every call but one."""

    name = "shelf"

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, Any] = {}
        self.route("GET", r"/health", lambda r: Reply(200, {"ok": True}), public=True)
        self.route("PUT", r"/items/(?P<iid>[^/]+)", self._put)
        self.route("GET", r"/items/(?P<iid>[^/]+)", self._get)

    def _put(self, request: Request, iid: str) -> Reply:
        self.items[iid] = request.json()
        return Reply(201, self.items[iid])

    def _get(self, request: Request, iid: str) -> Reply:
        return Reply(200, lookup(self.items, iid, f"item {iid} does not exist"))

    def authorize(self, request: Request) -> None:
        if request.headers.get("x-token") != "t":
            raise ApiError(401, "unauthorized", "a token is required")

    def error_body(self, request: Request, error: ApiError) -> Any:
        return {"fault": {"code": error.code, "text": error.message}}


def call(
    double: HttpDouble, method: str, path: str, body: bytes | None = None, token: str = "t"
) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(
        double.url + path, data=body, method=method, headers={"X-Token": token}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null"), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


@pytest.fixture
def shelf() -> Any:
    with Shelf() as double:
        yield double


def test_routes_json_and_errors_in_the_providers_shape(shelf: Shelf) -> None:
    assert call(shelf, "PUT", "/items/a", b'{"n": 1}')[:2] == (201, {"n": 1})
    assert call(shelf, "GET", "/items/a/")[:2] == (200, {"n": 1})  # a trailing slash is the same
    assert call(shelf, "GET", "/items/b")[:2] == (
        404,
        {"fault": {"code": "not_found", "text": "item b does not exist"}},
    )
    assert call(shelf, "DELETE", "/items/a")[0] == 405
    assert call(shelf, "GET", "/nothing")[0] == 404
    status, body, _ = call(shelf, "PUT", "/items/c", b"{not json")
    assert status == 400 and body["fault"]["code"] == "invalid_json"
    assert call(shelf, "GET", "/items/a", token="wrong")[0] == 401
    assert call(shelf, "GET", "/health", token="wrong")[0] == 200
    assert shelf.calls("GET", r"/items/[^/]+") == 3 and len(shelf.log) == 8


def test_one_fault_convention_skip_times_retry_after_and_clear(shelf: Shelf) -> None:
    shelf.faults.inject("GET", r"/health", status=429, retry_after=7, skip=1, times=2)
    answers = [call(shelf, "GET", "/health") for _ in range(4)]
    assert [a[0] for a in answers] == [200, 429, 429, 200]
    assert answers[1][2]["Retry-After"] == "7"
    assert answers[1][1] == {
        "fault": {"code": "injected_fault", "text": "injected failure of GET /health"}
    }
    shelf.faults.inject("PUT", r"/items/.*", status=503, message="down", times=-1)
    assert [call(shelf, "PUT", "/items/x", b"1")[0] for _ in range(3)] == [503] * 3
    assert shelf.items == {}  # a failed call changes nothing
    shelf.faults.clear()
    assert call(shelf, "PUT", "/items/x", b"1")[0] == 201


def test_a_slow_fault_answers_normally_after_its_delay(shelf: Shelf) -> None:
    shelf.faults.inject("GET", r"/health", status=None, delay=0.3)
    start = time.monotonic()
    assert call(shelf, "GET", "/health")[0] == 200
    assert time.monotonic() - start >= 0.3
    assert call(shelf, "GET", "/health")[0] == 200  # once only


def test_a_stopped_double_frees_its_port() -> None:
    double = Shelf().start()
    assert call(double, "GET", "/health")[0] == 200
    double.stop()
    with pytest.raises(urllib.error.URLError):
        call(double, "GET", "/health")
