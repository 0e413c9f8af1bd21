"""Each scenario notebook poked at as a learner would, with nbclient: cells out of order,
twice, and again after a restart (a fresh kernel on the same run folder), then ``reset()``.

Nothing here runs a whole pipeline (the papermill test does): the cells that need an
earlier stage must say so in one ``error:`` line with the traceback collapsed below it
(never a NameError, never a 40-line traceback), display cells must not need names another
display cell defined, and the "gate says no" cells must run twice without raising.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from mlops_helpers.notebooks import find_notebook, kernel_config

pytestmark = pytest.mark.slow

# per scenario: cells (found by the start of their source) run in this order, with what
# each must show: "error" = one error line naming the stage to run; "ok" = no error at all
POKES: dict[str, list[tuple[str, str]]] = {
    "seldon_kind": [
        ('report = run("integration_test")', "error"),  # before train
        ('news = models()["news-classifier"]["meta"]\nright', "error"),  # a display cell
        ('report = run("integration_test")', "error"),  # twice
        ("show(images_dir()", "ok"),
    ],
    "sagemaker_byo": [
        ('print("instances:", run("deploy_test")', "error"),
        ("runtime = ctx.backend.runtime_client()", "error"),
        ("smoke = run(", "error"),
        ("show(images_dir()", "ok"),
        ("show(images_dir()", "ok"),
    ],
    "watson_openscale": [
        ('run("feedback", **degraded)', "error"),  # the gate demo before the monitor exists
        ('run("feedback", **degraded)', "error"),
        ('fields = session.need("setup"', "error"),
        ("limits = {t", "error"),
    ],
    "dvc_cml": [
        ('session.refused("lock_check")', "ok"),  # a gate saying no, out of order ...
        ('session.refused("lock_check")', "ok"),  # ... and twice
        ('session.refused("pushed_check")', "error"),  # then push refuses: lock_check first
        ("branch = session.result(", "error"),
    ],
    "continuous_x": [
        ('session.refused("train", C=-1.0)', "ok"),  # says why, raises nothing
        ("release(C=0.5)", "error"),
        ("compare(figures())", "error"),
        ('run("revert", revert_environment="canary")', "ok"),  # nothing to go back to: says so
        ("pd.DataFrame(timeline)", "ok"),
    ],
}
ONE_LINE = re.compile(r"^(error|gate failed): .*(run |first|reset)", re.IGNORECASE)


def _cell(nb: Any, start: str) -> int:
    hits = [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(start)
    ]
    assert len(hits) == 1, f"{start!r}: {len(hits)} cells"
    return hits[0]


def _setup_cells(nb: Any) -> list[int]:
    """The parameters cell and the setup cell (the one that makes the session)."""
    return [
        _cell(nb, 'backend = "local"'),
        next(i for i, c in enumerate(nb.cells) if "session = Session(" in c.source),
    ]


def _session(path: Path, plan: list[tuple[str, str]]) -> list[tuple[str, list[Any]]]:
    """Run the setup cells, then ``plan``'s cells, in one fresh kernel; their outputs."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
        config=kernel_config(),
        timeout=300,
    )
    seen = []
    with client.setup_kernel():
        for index in _setup_cells(nb):
            client.execute_cell(nb.cells[index], index)
            errors = [o for o in nb.cells[index].outputs if o.output_type == "error"]
            assert not errors, errors
        nb.cells.append(nbformat.v4.new_code_cell("reset();"))  # what a learner would add
        for start, _ in [*plan, ("reset();", "ok")]:
            index = _cell(nb, start)
            cell = nb.cells[index]
            cell.outputs = []
            client.execute_cell(cell, index)
            seen.append((start, list(cell.outputs)))
    return seen


def _check(start: str, expected: str, outputs: list[Any]) -> None:
    errors = [o for o in outputs if o.output_type == "error"]
    if expected == "ok":
        assert not errors, (start, [e.traceback for e in errors])
        return
    assert len(errors) == 1, (start, outputs)
    error = errors[0]
    assert error.ename != "NameError", (start, error.evalue)
    assert len(error.traceback) == 1 and ONE_LINE.match(error.traceback[0]), (
        start,
        error.traceback,
    )
    after = outputs[outputs.index(error) + 1 :]
    details = [o for o in after if "<details>" in o.get("data", {}).get("text/html", "")]
    assert details, f"{start}: no collapsed traceback below the error line"


@pytest.mark.parametrize("scenario", list(POKES))
def test_cells_out_of_order_twice_and_after_a_restart(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("MLOPS_ATTENDEE", "poke")
    path = find_notebook(scenario)
    plan = POKES[scenario]
    expected = dict(plan)  # a cell's expectation is the same each time it runs
    for start, outputs in _session(path, plan):  # the first kernel
        _check(start, expected.get(start, "ok"), outputs)
    # a restart: a fresh kernel on the same run folder (reset() above emptied it)
    for start, outputs in _session(path, plan[:1]):
        _check(start, expected.get(start, "ok"), outputs)
    folder = tmp_path / "runs" / f"{scenario}-poke"
    assert not folder.exists() or not any(folder.iterdir()), "reset() left state behind"


STOPPABLE = '''\
from pathlib import Path

from mlops_helpers.backends import BackendRegistry
from mlops_helpers.notebook_session import Session
from mlops_helpers.pipeline import Pipeline, Stage


def wait(ctx):
    """A stage Stop interrupts the first time (IPython raises KeyboardInterrupt on Stop)."""
    marker = Path(ctx.run_dir) / "stopped-once"
    if not marker.exists():
        marker.write_text("")
        raise KeyboardInterrupt
    return {"waited": True}


session = Session(Pipeline("stoppable", [Stage("wait", wait, "wait")], BackendRegistry("x")))
'''


def test_stop_shows_interrupted_and_the_next_cell_can_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(tmp_path / "runs"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (STOPPABLE, 'session.run("wait")')]
    nb.cells.append(nbformat.v4.new_code_cell('print(session.run("wait"))'))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    NotebookClient(nb, kernel_name="python3", allow_errors=True, config=kernel_config()).execute()
    stopped = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert len(stopped) == 1 and stopped[0].traceback == [
        "error: interrupted: wait stopped before it finished; run it again when you are ready"
    ], stopped
    assert [o.text for o in nb.cells[2].outputs if o.output_type == "stream"][-1].endswith(
        "{'waited': True}\n"
    ), nb.cells[2].outputs
