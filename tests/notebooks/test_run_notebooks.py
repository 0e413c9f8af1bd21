"""Each notebook runs headless with papermill on the local backend, says nothing a newcomer
cannot act on (no warnings from libraries), listens only on loopback, leaves nothing running,
and, in the cells ``nbval_cells.py`` names, prints what a learner saw when the reference was
made (the same comparison ``pytest --nbval-lax`` makes, on this one run). Each runs with its
exercises' solutions applied (``solutions=True``): every check says "not yet" just before its
solution and "done" after it."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from mlops_helpers.exercises import EXERCISES
from mlops_helpers.notebooks import (
    existing_notebooks,
    find_notebook,
    notebook_parameters,
    run_notebook,
)
from tests.notebooks.nbval_cells import ATTENDEE, CHECKED, RUNS_DIR_NAME, changed_cells
from tests.support import SocketWatch, leftover_processes, not_loopback

# library noise a reader can do nothing about: warnings, the kernel transport, MLflow plugins
NOISE = re.compile(r"\w+Warning:|without encryption|resolving request headers")


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def unsolved_exercises(name: str, executed: nbformat.NotebookNode) -> list[str]:
    """Each exercise whose check did not say "not yet" before its solution and "done" after."""
    wrong = []
    for item in EXERCISES.get(name, []):
        solve = f'solve("{name}", {item.number}, session)'
        check = f'check("{name}", {item.number})'
        before = [printed(c) for c in executed.cells if solve in c.get("source", "")]
        after = [printed(c) for c in executed.cells if c.get("source", "").strip() == check]
        if not any(f"before the solution: Exercise {item.number}: not yet: " in t for t in before):
            wrong.append(f"exercise {item.number} before its solution: {before}")
        if not any(t.startswith(f"Exercise {item.number}: done") for t in after):
            wrong.append(f"exercise {item.number} after its solution: {after}")
    return wrong


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
        solutions = {"solutions": True} if "solutions" in notebook_parameters(name) else {}
        result = run_notebook(name, params=solutions, output_dir=tmp_path / "executed")
    assert result.error is None, result.error
    executed = nbformat.read(result.output, as_version=4)
    assert unsolved_exercises(name, executed) == []
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
