"""Each notebook runs headless with papermill on the local backend, says nothing a newcomer
cannot act on (no warnings from libraries), and leaves nothing running."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from mlops_helpers.notebooks import existing_notebooks, run_notebook
from tests.support import leftover_processes

# library noise a reader can do nothing about: warnings, the kernel transport, MLflow plugins
NOISE = re.compile(r"\w+Warning:|without encryption|resolving request headers")


def noise_in(executed: Path) -> list[str]:
    """The stderr outputs of an executed notebook that are library noise, with their cell."""
    nb = nbformat.read(executed, as_version=4)
    return [f"cell {i}: {output.text.strip()[:300]}"
            for i, cell in enumerate(nb.cells) for output in cell.get("outputs", [])
            if output.get("name") == "stderr" and NOISE.search(output.get("text", ""))]


@pytest.mark.notebook
@pytest.mark.parametrize("name", existing_notebooks())
def test_notebook_runs(name: str, tmp_path: Path, run_root: Path) -> None:
    result = run_notebook(name, output_dir=tmp_path)
    assert result.error is None, result.error
    assert result.output.is_file()
    assert noise_in(result.output) == []
    assert leftover_processes(str(run_root)) == []
