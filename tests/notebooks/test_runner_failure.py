"""A failing notebook: the run names the cell and its error, and still writes the output."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_helpers.cli import main
from mlops_helpers.notebooks import run_notebook
from tests.fixtures.notebooks import Maker


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


@pytest.mark.notebook
def test_a_failing_stage_shows_the_cli_line_and_papermill_still_fails_the_run(
    tiny_notebook: Maker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a notebook a stage's failure is the command line's one line (the traceback sits
    collapsed below it); papermill still marks the run failed and names the cell."""
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(tmp_path / "runs"))
    tiny_notebook(
        [
            "from mlops_helpers.notebook_session import Session\n"
            "from mlops_helpers.sagemaker_byo.stages import PIPELINE\n"
            "session = Session(PIPELINE)",
            'session.run("deploy_test")',
        ]
    )
    result = run_notebook("preflight", output_dir=tmp_path / "build")
    assert result.error and 'cell In [4]: session.run("deploy_test")' in result.error
    assert "raised StageError: no model uri" in result.error
    cell = nbformat.read(result.output, as_version=4).cells[-1]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    line = "error: no model uri in "
    assert len(errors) == 1 and len(errors[0].traceback) == 1, errors
    assert errors[0].traceback[0].startswith(line) and "run the train" in errors[0].traceback[0]
    assert main(["sagemaker_byo", "deploy_test"]) == 1  # the command line says the same
    below = cell.outputs[cell.outputs.index(errors[0]) + 1 :]
    assert any("<details>" in o.get("data", {}).get("text/html", "") for o in below)
