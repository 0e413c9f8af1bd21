"""`run --jobs 2`: two notebooks at once, each in its own process; results in the order asked."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from mlops_helpers.cli import main

CELL = """
import json, os, time
from pathlib import Path
from mlops_helpers.waiting import wait_until
start = time.time()
Path(folder, name + ".json").write_text(json.dumps({"pid": os.getpid(), "start": start}))
wait_until(lambda: any(p.stem != name for p in Path(folder).glob("*.json")),
           what="the other notebook", timeout=10, interval=0.05, progress=False)
Path(folder, name + ".json").write_text(json.dumps(
    {"pid": os.getpid(), "start": start, "end": time.time()}))
"""


def _notebook(path: Path, name: str, folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(f'backend = "local"\nname = "{name}"\nfolder = "{folder}"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(CELL)]
    nbformat.write(nb, path)


@pytest.mark.notebook
def test_two_notebooks_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notebooks").mkdir()
    marks = tmp_path / "marks"
    marks.mkdir()
    _notebook(tmp_path / "notebooks" / "00_preflight.ipynb", "preflight", marks)
    _notebook(tmp_path / "notebooks" / "04_dvc_cml.ipynb", "dvc_cml", marks)
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))  # the worker processes see it
    out = tmp_path / "build"
    assert main(["run", "dvc_cml", "preflight", "--jobs", "2", "--output-dir", str(out)]) == 0
    first, second = (
        json.loads((marks / f"{n}.json").read_text()) for n in ("preflight", "dvc_cml")
    )
    assert first["pid"] != second["pid"]
    assert first["start"] < second["end"] and second["start"] < first["end"], "not at once"
    lines = capsys.readouterr().out.splitlines()
    assert sum(1 for line in lines if line.startswith(("[1/2] ", "[2/2] "))) == 2
    table = lines[-3:]
    assert [row.split()[0] for row in table] == ["dvc_cml", "preflight", "total"]
