"""The room's limits, accounts and modes, each checked without a hub: which limit a machine
gets, that process limits really hold in a child process, the cgroup files a room writes,
the one-attendee seat, and the permissions a root room sets."""

from __future__ import annotations

import getpass
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from mlops_helpers.errors import ConfigError
from mlops_helpers.room.accounts import AccountError, grant_traverse, lock_down_room
from mlops_helpers.room.hub import isolation_lines
from mlops_helpers.room.limits import (
    ADDRESS_HEADROOM,
    PIDS_MAX,
    RoomLimits,
    cgroup2_mount,
    choose_limits,
    parse_bytes,
)
from mlops_helpers.room.memory_watchdog import MemoryWatchdog, end_largest_over
from mlops_helpers.room.spawner import not_kept_apart, take_the_seat
from mlops_helpers.room.spec import RoomSpec
from mlops_helpers.waiting import wait_until


def fake_cgroup2(root: Path, controllers: str) -> Path:
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers)
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_sizes_read_as_jupyterhub_reads_them() -> None:
    assert parse_bytes("1G") == 2**30
    assert parse_bytes("1.5G") == 3 * 2**29
    assert parse_bytes("512M") == 512 * 2**20
    assert parse_bytes("2GiB") == 2 * 2**30
    assert parse_bytes("1000") == 1000
    for wrong in ("lots", "", "-1G", "0"):
        with pytest.raises(ConfigError, match="use a size such as 1G"):
            parse_bytes(wrong)
    with pytest.raises(ConfigError, match="CPU limit 0"):
        choose_limits("1G", 0, "abc", system_users=True)


def test_the_cgroup2_mount_is_found_in_the_mount_table() -> None:
    hybrid = [("/sys/fs/cgroup/memory", "cgroup"), ("/sys/fs/cgroup/unified", "cgroup2")]
    assert cgroup2_mount(hybrid) == Path("/sys/fs/cgroup/unified")
    assert cgroup2_mount([("/sys", "sysfs")]) is None
    here = cgroup2_mount()  # this machine's own table, through psutil
    assert here is None or here.is_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="a room makes cgroups only as root")
def test_a_cgroup2_with_the_controllers_gets_a_group_per_attendee(tmp_path: Path) -> None:
    mount = fake_cgroup2(tmp_path / "cg", "cpuset cpu io memory pids")
    limits = choose_limits("1G", 1.5, "abc", system_users=True, mount=mount)
    assert limits.kind == "cgroup" and "cgroup v2" in limits.describe()
    leaf = limits.prepare("ann")
    assert leaf == mount / "mlops-room-abc" / "ann"
    assert (mount / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (leaf / "memory.max").read_text() == str(2**30)
    assert (leaf / "cpu.max").read_text() == "150000 100000"
    assert (leaf / "pids.max").read_text() == str(PIDS_MAX)


def test_without_a_usable_cgroup2_process_limits_apply(tmp_path: Path) -> None:
    no_memory = fake_cgroup2(tmp_path / "cg", "cpu pids")  # a hybrid host: memory is on v1
    for mount in (no_memory, tmp_path / "none"):
        limits = choose_limits("1G", 1.0, "abc", system_users=True, mount=mount)
        assert limits.kind == "rlimit" and limits.prepare("ann") is None
        assert "RLIMIT_AS" in limits.describe() and "CPU is not capped" in limits.describe()
        assert "memory watchdog" in limits.describe() and "is ended" in limits.describe()
    shared = choose_limits("1G", 1.0, "abc", system_users=False, mount=no_memory)
    assert "processes per attendee" not in shared.describe()  # one user: no per-attendee count


def test_process_limits_hold_in_the_child_and_its_children() -> None:
    """The server's preexec: a child (and its own child) cannot map past the limit and its
    headroom (the watchdog holds the memory itself, see below)."""
    limits = RoomLimits("rlimit", 512 * 2**20, 1.0, per_user_processes=False)
    space = 512 * 2**20 + ADDRESS_HEADROOM
    code = (
        "import resource, subprocess, sys\n"
        "print(resource.getrlimit(resource.RLIMIT_AS)[0])\n"
        f"child = 'bytearray({space})'\n"
        "done = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True)\n"
        "print(done.returncode, done.stderr.strip().splitlines()[-1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=limits.preexec(None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert int(first) == space
    assert second == "1 MemoryError"
    assert os.nice(0) < 10  # this process kept its priority


HOLD = (
    "import sys, time\n"
    "blob = bytearray(b'x') * (int(sys.argv[1]) * 2**20)  # touched: real memory\n"
    "print('holding', flush=True)\n"
    "time.sleep(120)\n"
)


def holding(mib: int, *label: str) -> subprocess.Popen[str]:
    """A process that holds ``mib`` MiB of its own memory (``label``: extra argv words)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(mib), *label], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
    return proc


def end(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def test_the_watchdog_ends_the_largest_process_past_the_limit_never_the_server() -> None:
    """Together past the limit: the largest process but the attendee's server is SIGKILLed,
    once; the rest live on."""
    server = holding(200, "jupyterhub-singleuser")
    kernel = holding(150)
    small = holding(20)
    started = [server, kernel, small]
    try:
        procs = [psutil.Process(p.pid) for p in started]
        assert end_largest_over(2**30, procs) is None  # under the limit: nothing happens
        ended = end_largest_over(300 * 2**20, procs)
        assert ended is not None and ended.pid == kernel.pid
        assert ended.total > 300 * 2**20 and ended.pss > 140 * 2**20
        assert kernel.wait(timeout=10) == -9
        assert server.poll() is None and small.poll() is None
        alive = [p for p in procs if p.pid != kernel.pid]
        assert end_largest_over(300 * 2**20, alive) is None  # back under it
    finally:
        for proc in started:
            end(proc)


def test_the_watchdog_thread_watches_until_stopped() -> None:
    logs: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logs.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("test-watchdog")
    log.addHandler(handler)
    kernel = holding(120)
    try:
        watched = [psutil.Process(kernel.pid)]
        dog = MemoryWatchdog("ann", 60 * 2**20, lambda: watched, log, interval_s=0.05).start()
        try:
            wait_until(
                lambda: kernel.poll() is not None, what="the watchdog", timeout=30, progress=False
            )
        finally:
            dog.stop()
        assert [e.pid for e in dog.ended] == [kernel.pid]
        assert "ann held" in logs[0] and f"process {kernel.pid}" in logs[0]
    finally:
        end(kernel)
        log.removeHandler(handler)


def test_a_room_that_is_not_root_seats_one_attendee(tmp_path: Path) -> None:
    take_the_seat(tmp_path, "ann")
    take_the_seat(tmp_path, "ann")  # her next start
    with pytest.raises(AccountError, match=r"does not run as root.*\(ann\).*--shared-user"):
        take_the_seat(tmp_path, "ben")


def spec_with(isolation: str) -> RoomSpec:
    return RoomSpec("/r", "/repo", "main", "/bin", 1, 2, 3, 4, isolation=isolation, limits="L")


def test_the_start_message_says_what_is_kept_apart() -> None:
    system = isolation_lines(spec_with("system-users"), ["/root"])
    assert "kept apart" in system[0] and "jupyter-NAME" in system[0]
    assert "/root" in system[1] and system[-1] == "Limits: L."
    shared = isolation_lines(spec_with("shared-user"), [])
    assert shared[0] == not_kept_apart(getpass.getuser())
    assert "NOT kept apart" in shared[0] and "instructor" in shared[0]
    assert "ONE attendee" in isolation_lines(spec_with("one-attendee"), [])[0]


def test_the_room_folder_is_the_hubs_and_the_way_to_it_enterable(tmp_path: Path) -> None:
    private = tmp_path / "private"
    room = private / "deep" / "room"
    (room / "homes").mkdir(parents=True)
    (room / "instructor-code").write_text("x")
    (room / "logs").mkdir()
    private.chmod(0o700)
    lock_down_room(room)
    assert stat.S_IMODE(room.stat().st_mode) == 0o711
    assert stat.S_IMODE((room / "homes").stat().st_mode) == 0o711
    assert stat.S_IMODE((room / "instructor-code").stat().st_mode) == 0o600
    assert stat.S_IMODE((room / "logs").stat().st_mode) == 0o700
    changed = grant_traverse([room / "homes"])
    assert str(private) in changed
    assert stat.S_IMODE(private.stat().st_mode) == 0o701  # enter, not list
    assert grant_traverse([room / "homes"]) == []  # once is enough
