"""nbval checks what a learner sees in each scenario notebook's deterministic cells.

See ``nbval_cells.py``: the cells, their expected outputs, and how to refresh them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.nbval_cells import (
    CHECKED,
    RUNS_DIR_NAME,
    SANITIZE,
    TAG,
    nbval_notebook,
    run_env,
)
from tests.support import SocketWatch, not_loopback, stop_leftovers

NAMES = sorted(CHECKED)


@pytest.mark.parametrize("name", NAMES)
def test_every_checked_cell_is_in_the_notebook_with_an_expected_output(name: str) -> None:
    nb = nbval_notebook(name)  # raises if a checked cell vanished or became ambiguous
    checked = [c for c in nb.cells if TAG in c.metadata.get("tags", [])]
    assert len(checked) == len(CHECKED[name])
    assert all(c.outputs for c in checked), "a reference cell has no output to compare"


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_what_a_learner_sees_is_unchanged(name: str, tmp_path: Path) -> None:
    notebook = tmp_path / f"{name}.ipynb"
    nbformat.write(nbval_notebook(name), notebook)
    (tmp_path / "sanitize.cfg").write_text(SANITIZE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's strict settings
    run_root = tmp_path / RUNS_DIR_NAME
    # issue 15, loopback only: every socket that listens during the whole run is on loopback
    with SocketWatch(str(run_root)) as watch:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
             str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "--nbval-lax",
             "--nbval-current-env", "--nbval-cell-timeout", "600",
             "--nbval-sanitize-with", str(tmp_path / "sanitize.cfg"), str(notebook)],
            env=run_env(run_root), capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    left = stop_leftovers(str(run_root))
    assert done.returncode == 0, (
        f"{name}: a checked cell printed something else (if on purpose, refresh with "
        f"`.venv/bin/python -m tests.notebooks.nbval_cells {name}`):\n{done.stdout[-6000:]}")
    assert left == [], "the notebook left processes running"
    listening_pids = {pid for pid, _address, _port in watch.seen}
    assert len(listening_pids) >= 2, "saw only the kernel listen: the sampling missed the run"
    assert not_loopback(watch.seen) == [], "a server listened beyond 127.0.0.1"
