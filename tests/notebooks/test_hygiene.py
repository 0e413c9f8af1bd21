"""Every notebook: parameters cell first, python3 kernel, no outputs, ends with cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_helpers.paths import notebooks_dir

NOTEBOOKS = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks() -> None:
    assert any(p.name == "00_preflight.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_hygiene(path: Path) -> None:
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "no code cells"
    first = code[0]
    assert "parameters" in first["metadata"].get("tags", []), "first code cell is not tagged"
    assert "backend" in "".join(first["source"]), "parameters cell does not set `backend`"
    for cell in code:
        assert not cell.get("outputs"), f"committed outputs in cell: {''.join(cell['source'])}"
        assert cell.get("execution_count") is None, "committed execution counts"
    if not path.stem.endswith("preflight"):
        assert "cleanup" in "".join(code[-1]["source"]).lower(), "last cell is not cleanup"
        markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
        assert len(markdown) >= 5, "a scenario notebook explains its steps in markdown cells"
