"""Each notebook runs headless with papermill on the local backend, says nothing a newcomer
cannot act on (no warnings from libraries), listens only on loopback, leaves nothing running,
and, in the cells ``nbval_cells.py`` names, prints what a learner saw when the reference was
made (the same comparison ``pytest --nbval-lax`` makes, on this one run)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from mlops_helpers.notebooks import existing_notebooks, find_notebook, run_notebook
from tests.notebooks.nbval_cells import ATTENDEE, CHECKED, RUNS_DIR_NAME, changed_cells
from tests.support import SocketWatch, leftover_processes, not_loopback

# library noise a reader can do nothing about: warnings, the kernel transport, MLflow plugins
NOISE = re.compile(r"\w+Warning:|without encryption|resolving request headers")


def noise_in(executed: nbformat.NotebookNode) -> list[str]:
    """The stderr outputs of an executed notebook that are library noise, with their cell."""
    return [
        f"cell {i}: {output.text.strip()[:300]}"
        for i, cell in enumerate(executed.cells)
        for output in cell.get("outputs", [])
        if output.get("name") == "stderr" and NOISE.search(output.get("text", ""))
    ]


@pytest.fixture
def nbval_run_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run root and attendee the nbval references were made with (SANITIZE hides the
    folder; the attendee's name shows in run folder names)."""
    root = tmp_path / RUNS_DIR_NAME
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(root))
    monkeypatch.setenv("MLOPS_ATTENDEE", ATTENDEE)
    return root


@pytest.mark.notebook
@pytest.mark.parametrize("name", existing_notebooks())
def test_notebook_runs(name: str, tmp_path: Path, nbval_run_root: Path) -> None:
    with SocketWatch(str(nbval_run_root)) as watch:  # issue 15: servers on loopback only
        result = run_notebook(name, output_dir=tmp_path / "executed")
    assert result.error is None, result.error
    executed = nbformat.read(result.output, as_version=4)
    assert noise_in(executed) == []
    assert leftover_processes(str(nbval_run_root)) == []
    assert not_loopback(watch.seen) == [], "a server listened beyond 127.0.0.1"
    listening = {pid for pid, _address, _port in watch.seen}
    assert listening, "saw nothing listen (not even the kernel): the sampling missed the run"

    checked = find_notebook(name).stem
    if checked in CHECKED:
        changed = changed_cells(checked, executed)
        assert not changed, (
            f"a checked cell printed something else (if on purpose, refresh with "
            f"`.venv/bin/python -m tests.notebooks.nbval_cells {checked}`):\n" + "\n".join(changed)
        )
