"""The warm-launcher client and ``fork_launcher``: the same server whether the launcher forks
it or spawns it as a fresh interpreter (``MLOPS_START``; macOS spawns), with a launcher of
the test's own that serves a folder (standard library only, so each start is cheap)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from mlops_helpers import fork_launcher
from mlops_helpers.errors import ConfigError
from mlops_helpers.launcher_client import WarmLauncher, start_method
from mlops_helpers.pipeline import StateStore
from mlops_helpers.resources import ResourceTracker
from mlops_helpers.servers import http_json

LAUNCHER = f"""
import os, sys

sys.path.insert(0, {str(Path(fork_launcher.__file__).parent)!r})  # standard library only
import fork_launcher


def serve(request):
    fork_launcher.become(request["log"], request["cwd"], request["env"])
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    print("serving", os.getcwd(), "to", os.environ["GREETING"], flush=True)
    HTTPServer(("127.0.0.1", request["port"]), SimpleHTTPRequestHandler).serve_forever()


if __name__ == "__main__":
    fields = {{"cwd": str, "env": dict}}
    command = [sys.executable, __file__]
    fork_launcher.Launcher(("http.server",), fields, lambda request: None, serve, command).main(
        sys.argv[1:]
    )
"""


@pytest.fixture
def client(tmp_path: Path) -> Any:
    """``client()``: a WarmLauncher for the folder-serving launcher, in tmp_path's run."""
    script = tmp_path / "folder_launcher.py"
    script.write_text(LAUNCHER)
    ctx = SimpleNamespace(
        state=StateStore(tmp_path / "state.json"),
        tracker=ResourceTracker(tmp_path),
        run_dir=tmp_path,
    )
    argv = [sys.executable, str(script), "{port}"]
    yield lambda: WarmLauncher(ctx, "launcher", "folder-launcher", argv)  # type: ignore[arg-type]
    ctx.tracker.cleanup(log=lambda _line: None)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_server_is_the_same_forked_or_spawned(
    start: str, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_START", start)
    launcher = client()
    folder = tmp_path / "site"
    folder.mkdir()
    server = launcher.start(
        "site", {"cwd": str(folder), "env": {"GREETING": "hi"}}, health_path="/"
    )
    proc = psutil.Process(server.pid)
    assert proc.ppid() == launcher.server().pid  # the launcher reaps it
    assert os.getsid(server.pid) == server.pid  # its own session: stopped alone
    assert proc.cwd() == str(folder)
    assert proc.environ()["OPENBLAS_NUM_THREADS"] == "1"
    assert (fork_launcher.CHILD in proc.cmdline()) == (start == "spawn")
    assert server.log_path == tmp_path / "logs" / "site.log"
    assert f"serving {folder} to hi" in server.log_path.read_text()  # its env added
    assert http_json("GET", f"{launcher.url()}/health")[1] == {"status": "ok", "start": start}
    status, answer = http_json("POST", f"{launcher.url()}/start", {"cwd": str(folder)})
    assert status == 400 and "port" in answer["error"]  # the port and log every one needs


def test_a_launcher_started_the_other_way_is_replaced(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_START", "fork")
    forking = client().server()
    monkeypatch.setenv("MLOPS_START", "spawn")
    spawning = client().server()
    assert spawning.pid != forking.pid and not forking.alive()
    assert http_json("GET", f"{spawning.url}/health")[1]["start"] == "spawn"


def test_start_method_spawns_on_macos_and_reads_mlops_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLOPS_START", raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert start_method() == "spawn"
    monkeypatch.setattr(sys, "platform", "linux")
    assert start_method() == "fork"
    monkeypatch.setenv("MLOPS_START", " Spawn ")
    assert start_method() == "spawn"
    monkeypatch.setenv("MLOPS_START", "vfork")
    with pytest.raises(ConfigError, match="MLOPS_START must be fork or spawn, not 'vfork'"):
        start_method()
