"""Run several model folders' own programs (their tests, or their ``train.py``), each in its
own process, paying the shared imports once.

This file runs with the *Seldon environment's* python, never in the workshop's environment;
``modelwork`` starts it with a JSON job file::

    .venvs/seldon/bin/python -P folder_runner.py JOBS_JSON

    {"timeout": 300, "preload": ["sklearn.linear_model", ...],
     "jobs": [{"name": "news_classifier", "cwd": FOLDER, "log": FILE,
               "argv": ["train.py", ...]            # a script run as ``python train.py ...``
               or "pytest": ["-q", "--basetemp=..."] # or the folder's tests, ``python -m pytest``
              }, ...]}

It imports ``preload`` (what every folder imports: scikit-learn, numpy, pytest, Flask,
seldon-core: a second of CPU for each fresh interpreter), then forks one child per job. A
child is what ``python train.py ...`` or ``python -m pytest`` started in that folder would
be: the folder is its working directory and the first entry of ``sys.path``, its output goes
to its log. Each child has its own module table, so the folders' same-named modules (every
folder has a ``train.py``) never meet.

Where servers spawn (``"start": "spawn"``: macOS, ``MLOPS_START=spawn``; see
``fork_launcher.py``) nothing is preloaded and each job is a fresh interpreter instead,
``python -P folder_runner.py --job JOB``, that runs the same code.

Prints one JSON line: job name -> {"code": exit code or null (timed out), "seconds"}.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import signal
import sys
import time
from typing import Any


def _preload(modules: list[str]) -> None:
    for name in modules:
        with contextlib.suppress(ImportError):  # a folder that needs it fails on its own
            importlib.import_module(name)


def _run_job(job: dict[str, Any]) -> int:
    """In the forked child: become the job's program, run in its folder."""
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(job["cwd"])
    sys.path.insert(0, job["cwd"])
    if "pytest" in job:
        import pytest

        return int(pytest.main(list(job["pytest"])))
    sys.argv = list(job["argv"])
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:  # as the interpreter would turn it into an exit status
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def _be_job(job: dict[str, Any]) -> None:
    """In a forked or spawned child: run the job, then exit with its status."""
    code = 1
    try:
        code = _run_job(job)
    except BaseException:  # noqa: BLE001  (the log says why; the parent sees the exit)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _launch(job: dict[str, Any], method: str) -> int:
    if method == "spawn":  # a fresh interpreter; its stdout is not ours (we print the result)
        argv = [sys.executable, "-P", __file__, "--job", json.dumps(job)]
        devnull = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
        return os.posix_spawn(sys.executable, argv, os.environ, file_actions=devnull)
    pid = os.fork()
    if pid == 0:
        _be_job(job)
    return pid


def main(argv: list[str]) -> int:
    if argv[0] == "--job":
        _be_job(json.loads(argv[1]))
    with open(argv[0]) as handle:
        spec = json.load(handle)
    timeout = float(spec["timeout"])
    method = spec.get("start", "fork")
    if method == "fork":
        _preload(list(spec.get("preload", [])))
    sys.stdout.flush()
    sys.stderr.flush()
    started = {_launch(job, method): (job["name"], time.monotonic()) for job in spec["jobs"]}
    results: dict[str, dict[str, object]] = {}

    def out_of_time(_signum: int, _frame: object) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, timeout)  # bounded: what is left then is killed
    try:
        while started:
            pid, status = os.waitpid(-1, 0)
            name, start = started.pop(pid)
            results[name] = {
                "code": os.waitstatus_to_exitcode(status),
                "seconds": round(time.monotonic() - start, 2),
            }
    except TimeoutError:
        for late, (name, _start) in started.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(late, signal.SIGKILL)
            os.waitpid(late, 0)
            results[name] = {"code": None, "seconds": round(timeout, 2)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
