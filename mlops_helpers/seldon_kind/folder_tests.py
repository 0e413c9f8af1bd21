"""Run several model folders' own tests, each in its own pytest process, paying the shared
imports once.

This file runs with the *Seldon environment's* python, never in the workshop's environment;
``modelwork.unit_test_all`` starts it::

    .venvs/seldon/bin/python -P folder_tests.py LOG_DIR TIMEOUT_S FOLDER [FOLDER ...]

It imports what every folder's tests import (pytest, numpy, scikit-learn, Flask,
seldon-core: about a second of CPU), then forks one child per folder. A child is what
``python -m pytest`` started in that folder would be: the folder is its working directory
(its ``pytest.ini`` makes it the rootdir) and the first entry of ``sys.path``; its output goes
to ``LOG_DIR/unit-<folder>.log``; a private ``--basetemp`` keeps concurrent sessions from
pruning each other's temporary folders. Each child has its own module table, so the folders'
same-named modules (every folder has a ``train.py``) never meet.

Prints one JSON line: folder name -> {"code": exit code or null (timed out), "seconds"}.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time
from pathlib import Path

#: imported before forking: the libraries the model folders and their tests share
SHARED = ("pytest", "numpy", "joblib", "sklearn.datasets", "sklearn.linear_model",
          "sklearn.model_selection", "sklearn.pipeline", "sklearn.preprocessing",
          "sklearn.feature_extraction.text", "sklearn.metrics", "flask",
          "seldon_core.flask_utils")


def _preload() -> None:
    for name in SHARED:
        with contextlib.suppress(ImportError):  # a folder that needs it fails on its own
            importlib.import_module(name)


def _child(folder: Path, log_dir: Path) -> int:
    """In the forked child: become ``python -m pytest`` run in ``folder``."""
    import pytest

    log = os.open(log_dir / f"unit-{folder.name}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                  0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    code = pytest.main(["-q", "--color=no", f"--basetemp={log_dir / f'pytest-{folder.name}'}"])
    sys.stdout.flush()
    sys.stderr.flush()
    return int(code)


def main(argv: list[str]) -> int:
    log_dir, timeout, folders = Path(argv[0]), float(argv[1]), [Path(a) for a in argv[2:]]
    log_dir.mkdir(parents=True, exist_ok=True)
    _preload()
    sys.stdout.flush()
    sys.stderr.flush()
    started: dict[int, tuple[str, float]] = {}
    for folder in folders:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(folder.resolve(), log_dir.resolve())
            finally:
                os._exit(code)
        started[pid] = (folder.name, time.monotonic())
    results: dict[str, dict[str, object]] = {}

    def out_of_time(_signum: int, _frame: object) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, timeout)  # bounded: what is left then is killed
    try:
        while started:
            pid, status = os.waitpid(-1, 0)
            name, start = started.pop(pid)
            results[name] = {"code": os.waitstatus_to_exitcode(status),
                             "seconds": round(time.monotonic() - start, 2)}
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
