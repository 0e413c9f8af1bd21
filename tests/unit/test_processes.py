"""Process handling works without /proc (macOS has none) and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_helpers.paths import project_root

ROOT = project_root()
SCENARIO = Path(__file__).with_name("process_scenario.py")
EXPECTED = {
    "alive": True,
    "group_size": 2,
    "alive_after_master_killed": False,
    "group_after_master_killed": 0,
    "port_free_after_master_killed": True,
    "cleanup_rc": 0,
    "cleanup_output": "cleanup: released process:second",
    "second_alive": False,
    "second_group": 0,
    "second_port_free": True,
    "tracked": [],
}


def _run_scenario(argv: list[str], run_dir: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [*argv, sys.executable, str(SCENARIO), str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_start_check_stop_of_a_server_with_workers(tmp_path: Path) -> None:
    facts = _run_scenario([], tmp_path)
    assert {k: facts[k] for k in EXPECTED} == EXPECTED


def _can_hide_proc() -> str | None:
    if sys.platform != "linux":
        return "no /proc on this system: the plain test above already runs without it"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "hiding /proc needs root and unshare(1)"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=30)
    return None if probe.returncode == 0 else "unshare --mount is not permitted here"


def test_the_same_with_proc_hidden(tmp_path: Path) -> None:
    """In a private mount namespace an empty folder is bound over /proc, so any read of
    /proc by our code (or by Python on our behalf) fails or finds nothing; psutil alone is
    given a second procfs mount, as it is given libproc on macOS."""
    reason = _can_hide_proc()
    if reason:
        pytest.skip(reason)
    empty, procfs = tmp_path / "empty", tmp_path / "procfs"
    empty.mkdir()
    procfs.mkdir()
    (tmp_path / "run").mkdir()
    hide = (
        'mount --bind /proc "$0" && mount --bind "$1" /proc && shift && '
        'MLOPS_TEST_PROCFS="$0" exec "$@"'
    )
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        hide,
        str(procfs),
        str(empty),
    ]
    # sh -c SCRIPT $0 $1 CMD...: after the shift, "$@" is the scenario command line
    facts = _run_scenario(argv, tmp_path / "run")
    assert facts["proc_visible"] is False
    assert {k: facts[k] for k in EXPECTED} == EXPECTED


# The one /proc path allowed: the socket sampler's Linux tables, with psutil where they are
# missing (tests/unit/test_support.py runs both ways).
ALLOWED_PROC_LINES = {'PROC_NET = Path("/proc/net")'}


def test_no_proc_path_in_the_package_or_test_support() -> None:
    """A cheap guard for what the namespace test proves at run time."""
    files = [*sorted((ROOT / "mlops_helpers").rglob("*.py")), ROOT / "tests" / "support.py"]
    offenders = [
        f"{f.relative_to(ROOT)}: {line.strip()}"
        for f in files
        for line in f.read_text().splitlines()
        if any(quote in line for quote in ('"/proc', "'/proc"))
        and line.strip() not in ALLOWED_PROC_LINES
    ]
    assert offenders == []


def test_a_start_time_recorded_by_an_older_version_is_still_recognised() -> None:
    """Run directories written before psutil hold clock ticks since boot, as a string."""
    import psutil

    from mlops_helpers.resources import process_alive, process_start_time

    me = os.getpid()
    ticks = round((process_start_time(me) - psutil.boot_time()) * os.sysconf("SC_CLK_TCK"))
    assert process_alive(me, str(ticks))
    assert not process_alive(me, str(ticks + 1000))  # ten seconds off: another process
    assert not process_alive(me, "not a number")
