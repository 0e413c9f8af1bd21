"""What a learner sees in the deterministic cells of each scenario notebook.

A few cells per notebook print the same thing on every run: the stage list, the gates
saying no in the gate demos, what the cleanup released. Their expected outputs live in a
small reference notebook per scenario under ``nbval_expected/`` (only those cells).
``tests/notebooks/test_run_notebooks.py`` compares them with the same cells of its papermill
run, the way ``pytest --nbval-lax`` compares a cell tagged ``nbval-check-output`` (nbval's
own stream coalescing, sanitizer format and skipped keys; ``SANITIZE`` hides run folders,
ports and hashes), so each notebook runs once per test session, not once for papermill and
again for nbval. ``nbval_notebook`` builds the tagged copy for a cell-by-cell nbval report.

When a change to a notebook or to the stage code alters one of these outputs on purpose,
refresh the references (it runs the notebooks) and review the diff::

    .venv/bin/python -m tests.notebooks.nbval_cells 02_sagemaker_byo 03_watson_openscale
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbval.plugin import (
    coalesce_streams,
    get_sanitize_patterns,
    transform_streams_for_comparison,
)

from mlops_helpers.paths import notebooks_dir

EXPECTED_DIR = Path(__file__).with_name("nbval_expected")
TAG = "nbval-check-output"
RUNS_DIR_NAME = "nbval-runs"  # the run root's folder name: SANITIZE hides where it is
ATTENDEE = "nbval"

# The checked cells of each notebook, each found by a piece of its source that is unique.
CHECKED: dict[str, tuple[str, ...]] = {
    "02_sagemaker_byo": (
        'print("stages:"',  # the stage list
        "if gate_demos:",  # both gates saying no, and nothing left running after them
        'run("cleanup")\nserving',  # what the cleanup released
    ),
    "03_watson_openscale": (
        'print("stages:"',
        'run("feedback", **degraded)',  # the quality gate saying no
        'run("cleanup");',
    ),
}

# nbval's sanitizer format: each section's regex is replaced in expected and actual output.
SANITIZE = f"""\
[run-root]
regex: \\S*/{RUNS_DIR_NAME}(?=/)
replace: RUN_ROOT

[loopback-port]
regex: 127\\.0\\.0\\.1:\\d+
replace: 127.0.0.1:PORT

[hex-digest]
regex: \\b[0-9a-f]{{12,64}}\\b
replace: HEX

[timestamp]
regex: \\d{{8}}-\\d{{6}}(-\\d+)?
replace: TIMESTAMP
"""


def cell_for(nb: nbformat.NotebookNode, marker: str, where: str) -> nbformat.NotebookNode:
    """The one code cell of ``nb`` whose source contains ``marker``."""
    found = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    if len(found) != 1:
        raise LookupError(
            f"{where}: {len(found)} code cells contain {marker!r}; expected "
            f"one (update CHECKED in {Path(__file__).name})"
        )
    return found[0]


def reference_path(name: str) -> Path:
    """A notebook in all but name: ``.json`` keeps linters and notebook collectors off it."""
    return EXPECTED_DIR / f"{name}.json"


def nbval_notebook(name: str) -> nbformat.NotebookNode:
    """The current scenario notebook; the checked cells carry the expected outputs."""
    nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
    reference = nbformat.read(reference_path(name), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for marker in CHECKED[name]:
        cell = cell_for(nb, marker, f"notebooks/{name}.ipynb")
        cell.outputs = cell_for(reference, marker, str(reference_path(name))).outputs
        cell.execution_count = 1  # nbval refuses outputs of a cell that never ran
        if _ends_quiet(cell.source):
            # IPython hides the value of a last line ending in ';' by looking it up in the
            # input history, which nbval does not store: say "no value" another way
            cell.source += "\npass"
        cell.metadata.setdefault("tags", []).append(TAG)
    return nb


def _ends_quiet(source: str) -> bool:
    """The last line of code ends with ';' (a trailing comment aside)."""
    lines = [line.split("#", 1)[0].rstrip() for line in source.strip().splitlines()]
    code = [line for line in lines if line]
    return bool(code) and code[-1].endswith(";")


# the output keys `pytest --nbval-lax` leaves out of a comparison (nbval's IPyNbFile)
SKIP_COMPARE = frozenset(
    {
        "metadata",
        "traceback",
        "prompt_number",
        "output_type",
        "name",
        "execution_count",
        "application/vnd.jupyter.widget-view+json",
        "image/png",
        "image/jpeg",
    }
)


def compared(outputs: list) -> dict[str, list]:
    """Outputs as nbval compares them: streams coalesced, keyed by stream name or MIME type
    (order kept within a key), each value sanitized."""
    patterns = get_sanitize_patterns(SANITIZE)
    keyed: dict[str, list] = {}
    copies = [nbformat.from_dict(dict(o)) for o in outputs]  # coalescing edits in place
    for output in transform_streams_for_comparison(coalesce_streams(copies)):
        items = output.get("data", {}) | {k: v for k, v in output.items() if k != "data"}
        for key, value in items.items():
            if key not in SKIP_COMPARE:
                if isinstance(value, str):
                    for regex, replace in patterns:
                        value = re.sub(regex, replace, value)
                keyed.setdefault(key, []).append(value)
    return keyed


def changed_cells(name: str, executed: nbformat.NotebookNode) -> list[str]:
    """The checked cells of an executed notebook whose outputs differ from the reference,
    each with what was expected and what it printed."""
    reference = nbformat.read(reference_path(name), as_version=4)
    changed = []
    for marker in CHECKED[name]:
        expected = compared(cell_for(reference, marker, str(reference_path(name))).outputs)
        got = compared(cell_for(executed, marker, f"the executed {name}").outputs)
        if got != expected:
            changed.append(f"cell {marker!r}:\n  expected {expected}\n  printed  {got}")
    return changed


def run_env(run_root: Path) -> dict[str, str]:
    """The environment the notebook's kernel runs in, the same for refresh and test."""
    return {**os.environ, "MLOPS_RUN_ROOT": str(run_root), "MLOPS_ATTENDEE": ATTENDEE}


def refresh(name: str) -> Path:
    """Run the scenario notebook and keep the outputs of its checked cells as reference."""
    from nbclient import NotebookClient

    nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        run_root = Path(tmp) / RUNS_DIR_NAME
        saved = dict(os.environ)
        os.environ.update(run_env(run_root))  # the kernel inherits this process' environment
        try:
            NotebookClient(
                nb,
                timeout=600,
                kernel_name="python3",
                resources={"metadata": {"path": str(notebooks_dir())}},
            ).execute()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    reference = nbformat.v4.new_notebook(metadata=nb.metadata)
    for marker in CHECKED[name]:
        cell = cell_for(nb, marker, f"notebooks/{name}.ipynb")
        kept = nbformat.v4.new_code_cell(cell.source, metadata={"tags": [TAG]})
        kept.outputs = [
            o
            for o in cell.outputs
            if o.get("output_type") != "display_data"
            or "application/vnd.jupyter.widget-view+json" not in o.get("data", {})
        ]
        reference.cells.append(kept)
    EXPECTED_DIR.mkdir(exist_ok=True)
    nbformat.write(reference, reference_path(name))
    return reference_path(name)


if __name__ == "__main__":
    for notebook in sys.argv[1:] or list(CHECKED):
        print("refreshed", refresh(notebook))
