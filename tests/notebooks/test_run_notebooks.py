"""Each notebook runs headless with papermill on the local backend, says nothing a newcomer
cannot act on (no warnings from libraries), listens only on loopback, leaves nothing running,
and, in the cells ``nbval_cells.py`` names, prints what a learner saw when the reference was
made (the same comparison ``pytest --nbval-lax`` makes, on this one run). Each runs with its
exercises' solutions applied (``solutions=True``): every check says "not yet" just before its
solution and "done" after it.

They run the way macOS runs them (``MLOPS_START=spawn``): every server a warm launcher
starts is a fresh interpreter, never a fork, so the path macOS takes is exercised for every
scenario on every change. The scenarios' own tests and ``make run`` take the fork path."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from mlops_helpers.exercises import all_exercises
from mlops_helpers.fork_launcher import CHILD
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
# the warm launchers' command lines: ``LAUNCHER PORT ...`` is one; ``LAUNCHER --child REQUEST``
# a server it spawned; a server it forked keeps ``LAUNCHER PORT ...`` and listens elsewhere
LAUNCHERS = re.compile(r"mlops_helpers\.\w+\.launcher$|/warm_launcher\.py$")


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def unsolved_exercises(name: str, executed: nbformat.NotebookNode) -> list[str]:
    """Each exercise whose check did not say "not yet" before its solution and "done" after."""
    wrong = []
    for item in all_exercises().get(name, []):
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


def started_by_launchers(watch: SocketWatch) -> dict[str, list[str]]:
    """The listening processes of warm launchers, by kind: "launcher" (one on its own port),
    "spawned" (``--child``) and "forked" (a launcher's command line on another port)."""
    kinds: dict[str, list[str]] = {"launcher": [], "spawned": [], "forked": []}
    for pid, _address, port in sorted(watch.seen):
        argv = watch.commands.get(pid, [])
        at = next((i for i, arg in enumerate(argv) if LAUNCHERS.search(arg)), len(argv))
        if at + 1 >= len(argv):
            continue
        kind = {CHILD: "spawned", str(port): "launcher"}.get(argv[at + 1], "forked")
        kinds[kind].append(f"{pid} on {port}: {' '.join(argv)[:200]}")
    return kinds


@pytest.fixture
def nbval_run_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run root and attendee the nbval references were made with (SANITIZE hides the
    folder; the attendee's name shows in run folder names), servers started as on macOS."""
    root = tmp_path / RUNS_DIR_NAME
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(root))
    monkeypatch.setenv("MLOPS_ATTENDEE", ATTENDEE)
    monkeypatch.setenv("MLOPS_START", "spawn")
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
    launched = started_by_launchers(watch)
    assert launched["forked"] == [], "MLOPS_START=spawn, but a launcher forked a server"
    assert launched["spawned"] or not launched["launcher"], f"no spawned server: {launched}"

    checked = find_notebook(name).stem
    if checked in CHECKED:
        changed = changed_cells(checked, executed)
        assert not changed, (
            f"a checked cell printed something else (if on purpose, refresh with "
            f"`.venv/bin/python -m tests.notebooks.nbval_cells {checked}`):\n" + "\n".join(changed)
        )
