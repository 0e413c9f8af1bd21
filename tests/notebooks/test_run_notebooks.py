"""Each notebook runs headless with papermill on the local backend, and leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.notebooks import existing_notebooks, run_notebook
from tests.support import leftover_processes


@pytest.mark.notebook
@pytest.mark.parametrize("name", existing_notebooks())
def test_notebook_runs(name: str, tmp_path: Path, run_root: Path) -> None:
    result = run_notebook(name, output_dir=tmp_path)
    assert result.error is None, result.error
    assert result.output.is_file()
    assert leftover_processes(str(run_root)) == []
