"""One room per folder, as an instructor meets it: `mlops-workshop hub` in a terminal.

A second start in the same folder says the room is running (with its URL) and changes
nothing; a launcher killed outright leaves a room that `mlops-workshop hub stop` ends
cleanly; a launcher that gets SIGHUP (a dropped SSH session) takes the whole room down with
it. Each room here is the real one: JupyterHub, its proxy, the idle culler, the room page."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from mlops_helpers.room.spec import RoomSpec
from mlops_helpers.servers import free_port, port_is_free
from mlops_helpers.waiting import wait_until

pytestmark = [pytest.mark.room, pytest.mark.slow]

CLI = [sys.executable, "-m", "mlops_helpers.cli", "hub"]
CODE = "launch-code-42"
LOCK_FILE = "room.lock"


def marked_processes(room_dir: str) -> list[psutil.Process]:
    """Every live process carrying the room's marker (MLOPS_ROOM, set by the launcher)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("MLOPS_ROOM") == room_dir and proc.status() != "zombie":
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def folder_is_free(room_dir: Path) -> bool:
    """Nothing holds the room folder's lock."""
    with (room_dir / LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def launch(room_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`mlops-workshop hub` as a terminal would run it; returns once the room is up."""
    with log.open("ab") as out:
        launcher = subprocess.Popen(
            [*CLI, "--room-dir", str(room_dir), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "MLOPS_WORKSHOP_CODE": CODE},
        )
    wait_until(
        lambda: launcher.poll() is None and "Workshop room is up" in log.read_text(),
        what="the room to start",
        timeout=120,
        interval=0.3,
        fail_if=lambda _: (
            f"the launcher exited: {log.read_text()[-500:]}"
            if launcher.poll() is not None
            else None
        ),
        progress=False,
    )
    return launcher


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
    )


def answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=10).ok
    except requests.RequestException:
        return False


def assert_room_gone(room_dir: Path) -> None:
    spec = RoomSpec.load(room_dir / "room.json")
    assert marked_processes(spec.room_dir) == []
    for port in (spec.hub_port, spec.hub_api_port, spec.proxy_api_port, spec.service_port):
        assert port_is_free(port), port
    assert folder_is_free(room_dir)


def folder_state(room_dir: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in room_dir.iterdir()
        if p.is_file() and p.suffix not in (".log", ".sqlite") and p.name != LOCK_FILE
    }


@pytest.fixture
def room_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "room"
    yield folder
    if (folder / "room.json").is_file():  # whatever a failed test left: end it
        cli("stop", "--room-dir", str(folder))


def test_a_second_start_changes_nothing_and_stop_ends_an_orphaned_room(
    room_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    launcher = launch(room_dir, port, tmp_path / "first.log")
    before = folder_state(room_dir)

    second = cli("--room-dir", str(room_dir), "--port", str(free_port()))
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"already running in {room_dir} at http://127.0.0.1:{port}/" in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
    assert answers(port) and launcher.poll() is None
    assert folder_state(room_dir) == before  # not a code, a spec or a pid file touched

    launcher.kill()  # the launcher dies outright; the hub keeps serving, an orphan
    launcher.wait(timeout=10)
    assert answers(port)
    again = cli("--room-dir", str(room_dir))
    assert again.returncode == 1 and "already running" in again.stderr  # the hub holds the lock

    stopped = cli("stop", "--room-dir", str(room_dir))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "ended" in stopped.stdout
    assert not answers(port)
    assert_room_gone(room_dir)
    nothing = cli("stop", "--room-dir", str(room_dir))
    assert nothing.returncode == 0 and "No room was running" in nothing.stdout


def test_sighup_takes_the_whole_room_down(room_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "launcher.log"
    launcher = launch(room_dir, port, log)
    room = [p for p in marked_processes(str(room_dir.resolve()))]
    assert len(room) >= 3  # the hub, its proxy, the idle culler (all carry the marker)
    launcher.send_signal(signal.SIGHUP)
    assert launcher.wait(timeout=90) == 0, log.read_text()[-2000:]
    assert "Ending the room (SIGHUP)" in log.read_text()
    gone, alive = psutil.wait_procs(room, timeout=5)
    assert alive == [], [p.cmdline() for p in alive]
    assert not answers(port)
    assert_room_gone(room_dir)
