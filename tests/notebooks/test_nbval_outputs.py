"""The nbval references stay in step with the notebooks: every checked cell is still in its
notebook, once, with an expected output. (The outputs themselves are compared on the
papermill run in ``test_run_notebooks.py``; see ``nbval_cells.py``.)"""

from __future__ import annotations

import nbformat
import pytest

from tests.notebooks.nbval_cells import (
    CHECKED,
    TAG,
    changed_cells,
    compared,
    nbval_notebook,
    reference_path,
)


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_every_checked_cell_is_in_the_notebook_with_an_expected_output(name: str) -> None:
    nb = nbval_notebook(name)  # raises if a checked cell vanished or became ambiguous
    checked = [c for c in nb.cells if TAG in c.metadata.get("tags", [])]
    assert len(checked) == len(CHECKED[name])
    assert all(c.outputs for c in checked), "a reference cell has no output to compare"


def _stdout(text: str) -> list:
    return [nbformat.v4.new_output("stream", name="stdout", text=text)]


def test_the_comparison_ignores_run_folders_ports_hashes_and_times_only() -> None:
    one = _stdout("/tmp/a/nbval-runs/x 127.0.0.1:5 0123456789abcdef 20261126-070000 ok\n")
    two = _stdout("/b/nbval-runs/x 127.0.0.1:41234 fedcba9876543210 20250101-120000-3 ok\n")
    other = _stdout("/b/nbval-runs/x 127.0.0.1:41234 fedcba9876543210 20250101-120000-3 no\n")
    assert compared(one) == compared(two)
    assert compared(one) != compared(other)
    # streams are coalesced, as nbval does: one print or two, the same output
    assert compared(_stdout("a\n") + _stdout("b\n")) == compared(_stdout("a\nb\n"))


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_a_changed_line_in_a_checked_cell_is_reported(name: str) -> None:
    executed = nbformat.read(reference_path(name), as_version=4)  # the reference's cells
    assert changed_cells(name, executed) == []
    executed.cells[-1].outputs += _stdout("a line nobody expected\n")
    [report] = changed_cells(name, executed)
    assert "a line nobody expected" in report
