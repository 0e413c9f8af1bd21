from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlops_helpers.errors import ServerStartError
from mlops_helpers.resources import ResourceTracker
from mlops_helpers.servers import free_port, http_json, port_is_free, start_server

HEALTHY = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"]


def test_start_health_stop(tmp_path: Path) -> None:
    tracker = ResourceTracker(tmp_path)
    server = start_server(
        "files",
        HEALTHY,
        run_dir=tmp_path,
        tracker=tracker,
        health_path="/",
        cwd=tmp_path,
        timeout=30,
    )
    try:
        assert server.alive()
        status, _ = http_json("GET", f"{server.url}/")
        assert status == 200
        assert tracker.get("process", "files") is not None
        assert (tmp_path / "logs" / "files.log").is_file()
    finally:
        server.stop(tracker)
    assert not server.alive()
    assert tracker.list() == []
    assert port_is_free(server.port)


def test_server_that_exits_shows_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('bad config: no model'); sys.exit(3)"]
    with pytest.raises(ServerStartError) as info:
        start_server("broken", argv, run_dir=tmp_path, timeout=30)
    message = str(info.value)
    assert "exited with code 3" in message
    assert "bad config: no model" in message


def test_server_that_never_gets_healthy_is_killed(tmp_path: Path) -> None:
    tracker = ResourceTracker(tmp_path)
    argv = [
        sys.executable,
        "-c",
        "import threading; print('warming up forever', flush=True); threading.Event().wait()",
    ]
    with pytest.raises(ServerStartError) as info:
        start_server("stuck", argv, run_dir=tmp_path, tracker=tracker, timeout=1.0)
    message = str(info.value)
    assert "timed out after" in message and "server 'stuck'" in message
    assert "warming up forever" in message
    assert tracker.list() == []  # killed and forgotten


def test_free_port_is_bindable() -> None:
    assert port_is_free(free_port())


def test_free_port_never_hands_out_the_same_port_twice_at_once() -> None:
    """Servers started side by side each get their own port before any of them binds."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        ports = list(pool.map(lambda _: free_port(), range(64)))
    assert len(set(ports)) == len(ports)


def test_http_json_returns_4xx_without_raising(tmp_path: Path) -> None:
    server = start_server("files404", HEALTHY, run_dir=tmp_path, health_path="/", cwd=tmp_path)
    try:
        status, body = http_json("GET", f"{server.url}/missing")
        assert status == 404
        assert isinstance(body, str)
    finally:
        server.stop()
