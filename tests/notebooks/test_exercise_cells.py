"""Every scenario notebook carries its exercises: the solutions switch (off by default), an
exercise cell and a check cell per exercise, before the cleanup, and a "where next" ending."""

from __future__ import annotations

import nbformat
import pytest

from mlops_helpers.exercises import all_exercises
from mlops_helpers.notebooks import existing_notebooks, find_notebook

EXERCISES = all_exercises()

SCENARIO_NOTEBOOKS = [n for n in existing_notebooks() if n in EXERCISES]


def test_every_scenario_notebook_is_here() -> None:
    assert sorted(SCENARIO_NOTEBOOKS) == sorted(EXERCISES)


@pytest.mark.parametrize("name", SCENARIO_NOTEBOOKS)
def test_exercise_and_check_cells(name: str) -> None:
    nb = nbformat.read(find_notebook(name), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "\nsolutions = False" in "\n" + code[0], "the parameters cell sets solutions = False"
    for item in EXERCISES[name]:
        solve = [i for i, s in enumerate(code) if f'solve("{name}", {item.number}, session)' in s]
        check = [i for i, s in enumerate(code) if s.strip() == f'check("{name}", {item.number})']
        assert len(solve) == 1 and len(check) == 1, (item.number, solve, check)
        assert "if solutions:" in code[solve[0]], "a solution runs only when asked for"
        assert solve[0] < check[0] < len(code) - 1, "the check follows; cleanup stays last"
        title = f"### Exercise {item.number} · {item.title}"
        assert any(c.source.startswith(title) for c in nb.cells if c.cell_type == "markdown")
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Where next")
    assert "cloud path" in last.source and "Files to read" in last.source
