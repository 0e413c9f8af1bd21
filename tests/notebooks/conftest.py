"""Small notebooks of our own, for testing the runner without a scenario's cost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from mlops_helpers import paths

Maker = Callable[[list[str]], Path]


@pytest.fixture
def tiny_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Maker:
    """``tiny_notebook([cell, ...])`` writes notebooks/00_preflight.ipynb (first cell tagged
    ``parameters``: backend and min_accuracy) and points the runner at it."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    monkeypatch.setattr(paths, "notebooks_dir", lambda: notebooks)

    def make(cells: list[str]) -> Path:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        params = nbformat.v4.new_code_cell('backend = "local"\nmin_accuracy = 0.9')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
        path = notebooks / "00_preflight.ipynb"
        nbformat.write(nb, path)
        return path

    return make
