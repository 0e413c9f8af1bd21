"""Start, check and stop servers that have workers, and say what happened (one JSON line).

Run as a script by ``test_processes.py``: once normally, and once inside a mount namespace
in which ``/proc`` is an empty folder, to prove the process code never reads ``/proc``
itself. psutil is the one thing that may look at the kernel's process table: pointed at a
second mount of procfs on Linux (``MLOPS_TEST_PROCFS``), at libproc/sysctl on macOS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from mlops_helpers.resources import ResourceTracker, group_members, process_alive
from mlops_helpers.servers import port_is_free, start_server
from mlops_helpers.waiting import wait_until

# A master that serves through a worker child, as uvicorn and gunicorn do.
MASTER_WITH_WORKER = [
    sys.executable,
    "-c",
    "import subprocess, sys; w = subprocess.Popen([sys.executable, '-m', 'http.server', "
    "sys.argv[1], '--bind', '127.0.0.1']); sys.exit(w.wait())",
    "{port}",
]


def main(run_dir: Path) -> dict[str, object]:
    if "MLOPS_TEST_PROCFS" in os.environ:
        psutil.PROCFS_PATH = os.environ["MLOPS_TEST_PROCFS"]
    facts: dict[str, object] = {"proc_visible": Path("/proc/self").exists()}
    tracker = ResourceTracker(run_dir)

    # 1. start and check: the master and its worker form one group
    first = start_server(
        "first",
        MASTER_WITH_WORKER,
        run_dir=run_dir,
        tracker=tracker,
        health_path="/",
        cwd=run_dir,
        timeout=30,
    )
    facts["alive"] = first.alive()
    facts["group_size"] = len(group_members(first.pid))

    # 2. kill -9 of the master: the orphaned worker is stopped, the port freed
    os.kill(first.pid, signal.SIGKILL)
    wait_until(
        lambda: not process_alive(first.pid),
        what="the master to die",
        timeout=10,
        interval=0.02,
        progress=False,
    )
    facts["alive_after_master_killed"] = first.alive()
    facts["group_after_master_killed"] = len(group_members(first.pid))
    facts["port_free_after_master_killed"] = port_is_free(first.port)
    tracker.forget("process:first")

    # 3. cleanup from another process, as Jenkins' post step does
    second = start_server(
        "second",
        MASTER_WITH_WORKER,
        run_dir=run_dir,
        tracker=tracker,
        health_path="/",
        cwd=run_dir,
        timeout=30,
    )
    code = (
        "import os, sys, psutil; from mlops_helpers.resources import ResourceTracker; "
        "procfs = os.environ.get('MLOPS_TEST_PROCFS'); "
        "psutil.PROCFS_PATH = procfs or getattr(psutil, 'PROCFS_PATH', None); "
        f"r = ResourceTracker({str(run_dir)!r}).cleanup(); sys.exit(len(r.failures))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    facts["cleanup_output"] = done.stdout.strip()
    facts["cleanup_rc"] = done.returncode
    facts["second_alive"] = process_alive(second.pid, second.start_time)
    facts["second_group"] = len(group_members(second.pid))
    facts["second_port_free"] = port_is_free(second.port)
    facts["tracked"] = [r.id for r in tracker.list()]
    return facts


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
