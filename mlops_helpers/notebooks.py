"""Run the workshop's notebooks headless with papermill."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_helpers import SCENARIOS, paths
from mlops_helpers.errors import UnknownNameError, WorkshopError

NOTEBOOK_NAMES: tuple[str, ...] = ("preflight", *SCENARIOS)


class NotebookFailed(WorkshopError):
    """A notebook's cell raised; names the notebook, the cell and the error."""


@dataclass(frozen=True)
class NotebookRun:
    name: str
    output: Path
    seconds: float
    error: str | None = None


def find_notebook(name: str, directory: Path | None = None) -> Path:
    """``seldon_kind`` -> ``notebooks/01_seldon_kind.ipynb``."""
    directory = directory or paths.notebooks_dir()
    if name not in NOTEBOOK_NAMES:
        raise UnknownNameError("notebook", name, list(NOTEBOOK_NAMES))
    matches = sorted(directory.glob(f"[0-9][0-9]_{name}.ipynb"))
    if not matches:
        raise WorkshopError(f"notebook '{name}' is not in {directory} yet")
    return matches[0]


def existing_notebooks(directory: Path | None = None) -> list[str]:
    directory = directory or paths.notebooks_dir()
    return [n for n in NOTEBOOK_NAMES if list(directory.glob(f"[0-9][0-9]_{n}.ipynb"))]


def run_notebook(
    name: str, *, backend: str = "local", params: Mapping[str, Any] | None = None,
    output_dir: Path | None = None, timeout: int = 900,
) -> NotebookRun:
    """Execute one notebook into ``build/`` (written even when a cell fails)."""
    import time

    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = find_notebook(name)
    out_dir = output_dir or paths.build_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / source.name
    parameters = {"backend": backend, **(params or {})}
    start = time.monotonic()
    error = None
    try:
        papermill.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name="python3",
            cwd=str(source.parent), progress_bar=False, execution_timeout=timeout,
        )
    except PapermillExecutionError as exc:
        error = (f"{source.name}: cell {exc.cell_index} (execution count {exc.exec_count}) "
                 f"raised {exc.ename}: {exc.evalue}")
    except Exception as exc:  # kernel died, bad parameters, ...
        error = f"{source.name}: {type(exc).__name__}: {exc}"
    return NotebookRun(name, output, time.monotonic() - start, error)
