"""A failing notebook: the run names the cell and its error, and still writes the output."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_helpers.cli import main
from tests.notebooks.conftest import Maker


@pytest.mark.notebook
def test_failing_cell_is_named_and_output_is_written(
    tiny_notebook: Maker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # parameters, injected parameters, print: the failing cell is In [4]
    tiny_notebook(["print('step one')", "raise ValueError('the model file is missing')"])
    out = tmp_path / "build"
    assert main(["run", "preflight", "--output-dir", str(out)]) == 1
    captured = capsys.readouterr()
    assert "00_preflight.ipynb: cell In [4]" in captured.err
    assert "ValueError: the model file is missing" in captured.err
    executed = nbformat.read(out / "00_preflight.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells for o in c.get("outputs", []))
    # one line while it runs, then the summary table with the first failing cell
    assert "[1/1] preflight ... FAILED in " in captured.out
    header, row, total = captured.out.strip().splitlines()[-3:]
    assert header.split() == ["notebook", "seconds", "status", "output", "first", "failing", "cell"]
    assert row.split()[0] == "preflight" and row.split()[2] == "FAILED"
    assert "00_preflight.ipynb" in row and "In [4]: raise ValueError(" in row
    assert total.split()[:3] == ["total", row.split()[1], "1"] and "FAILED" in total
