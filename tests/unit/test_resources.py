from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.errors import CleanupError
from mlops_helpers.resources import (
    ResourceTracker,
    process_alive,
    process_start_time,
    teardown_handler,
)

CALLS: list[str] = []


@teardown_handler("test-thing")
def _release_thing(params: dict[str, Any]) -> None:
    if params.get("fail"):
        raise RuntimeError(f"cannot release {params['label']}")
    CALLS.append(params["label"])


def test_cleanup_runs_newest_first_and_survives_a_failure(tmp_path: Path) -> None:
    CALLS.clear()
    tracker = ResourceTracker(tmp_path)
    tracker.add("test-thing", "a", label="a")
    tracker.add("test-thing", "b", label="b", fail=True)
    tracker.add("test-thing", "c", label="c")
    messages: list[str] = []
    report = tracker.cleanup(log=messages.append)
    assert CALLS == ["c", "a"]
    assert report.released == ["test-thing:c", "test-thing:a"]
    assert report.failures == [("test-thing:b", "RuntimeError: cannot release b")]
    assert any("FAILED test-thing:b" in m for m in messages)
    assert [r.id for r in tracker.list()] == ["test-thing:b"]  # kept for a retry
    with pytest.raises(CleanupError, match="cannot release b"):
        report.raise_for_failures()


def test_a_later_process_finds_and_releases_what_was_recorded(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import threading; threading.Event().wait()"], start_new_session=True
    )
    try:
        ResourceTracker(tmp_path).add(
            "process", "sleeper", pid=proc.pid, start_time=process_start_time(proc.pid)
        )
        code = (
            "from mlops_helpers.resources import ResourceTracker; import sys;"
            f"r = ResourceTracker({str(tmp_path)!r}).cleanup();"
            "sys.exit(1 if r.failures else 0)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "released process:sleeper" in done.stdout
        assert proc.wait(timeout=10) is not None
        assert ResourceTracker(tmp_path).list() == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_same_name_replaces_instead_of_duplicating(tmp_path: Path) -> None:
    tracker = ResourceTracker(tmp_path)
    tracker.add("path", "dir", path=str(tmp_path / "x"))
    tracker.add("path", "dir", path=str(tmp_path / "y"))
    assert [r.params["path"] for r in tracker.list()] == [str(tmp_path / "y")]


def test_path_teardown_removes_tree(tmp_path: Path) -> None:
    target = tmp_path / "tree" / "deep"
    target.mkdir(parents=True)
    tracker = ResourceTracker(tmp_path)
    tracker.add("path", "tree", path=str(tmp_path / "tree"))
    assert tracker.cleanup(log=lambda _m: None).failures == []
    assert not (tmp_path / "tree").exists()


def test_unknown_kind_is_reported_not_fatal(tmp_path: Path) -> None:
    tracker = ResourceTracker(tmp_path)
    tracker.add("nobody-knows", "x")
    report = tracker.cleanup(log=lambda _m: None)
    assert "no teardown registered" in report.failures[0][1]


def test_a_reused_pid_is_not_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import threading; threading.Event().wait()"], start_new_session=True
    )
    try:
        tracker = ResourceTracker(tmp_path)
        tracker.add("process", "other", pid=proc.pid, start_time="1")  # a different process
        tracker.cleanup(log=lambda _m: None)
        assert process_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_the_tracker_never_drops_another_process_entry(tmp_path: Path) -> None:
    """Issue 30: two processes record a server under one name (two stages at once, or a
    blue-green deploy): both stay tracked, forgetting one keeps the other, cleanup stops
    both."""
    servers = [
        subprocess.Popen(
            [sys.executable, "-c", "import threading; threading.Event().wait()"],
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        tracker = ResourceTracker(tmp_path)
        first, second = ({"pid": p.pid, "start_time": process_start_time(p.pid)} for p in servers)
        tracker.add("process", "app", **first)
        tracker.add("process", "app", **second)
        assert sorted(r.params["pid"] for r in tracker.list()) == sorted(p.pid for p in servers)
        tracker.forget("process:app", servers[0].pid)  # e.g. the first one failed to start
        assert [r.params["pid"] for r in tracker.list()] == [servers[1].pid]
        tracker.add("process", "app", **first)
        report = tracker.cleanup(log=lambda _m: None)
        assert report.failures == [] and len(report.released) == 2
        assert not any(process_alive(p.pid) for p in servers)
        assert tracker.list() == []
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
