"""A failing notebook: the run names the cell and its error, and still writes the output."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_helpers import paths
from mlops_helpers.cli import main


@pytest.mark.notebook
def test_failing_cell_is_named_and_output_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell('backend = "local"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('step one')"),
                nbformat.v4.new_code_cell("raise ValueError('the model file is missing')")]
    nbformat.write(nb, notebooks / "00_preflight.ipynb")
    monkeypatch.setattr(paths, "notebooks_dir", lambda: notebooks)
    out = tmp_path / "build"
    assert main(["run", "preflight", "--output-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "00_preflight.ipynb" in err
    assert "ValueError: the model file is missing" in err
    assert "cell" in err
    executed = nbformat.read(out / "00_preflight.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in executed.cells
               for o in c.get("outputs", []))
