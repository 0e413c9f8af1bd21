"""Set-up happens in `make install`, never in a notebook: the Seldon runtime is created from
its lock by the Makefile, and a notebook or stage that finds it missing says what to run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_helpers.errors import StageError
from mlops_helpers.paths import notebooks_dir, project_root
from mlops_helpers.seldon_kind import runtime

INSTALLING = re.compile(r"(^|\n)\s*[%!]\s*pip\b|pip install|install=True")


@pytest.mark.parametrize(
    "path", sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem
)
def test_no_notebook_cell_installs_packages(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert not [c for c in code if INSTALLING.search(c)]


def test_a_missing_runtime_is_an_error_that_names_make_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "requirements").mkdir()
    shutil.copy(runtime.lock_file(), tmp_path / "requirements")
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(StageError, match=r"run `make install`"):
        runtime.ensure_seldon_runtime()
    assert not (tmp_path / ".venvs").exists(), "nothing was installed"


def test_a_runtime_older_than_its_lock_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "requirements").mkdir()
    lock = tmp_path / "requirements" / runtime.lock_file().name
    lock.write_text(runtime.lock_file().read_text() + "\n# changed\n")
    venv = tmp_path / ".venvs" / "seldon"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / ".requirements.sha256").write_text("digest of an older lock")
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(StageError, match="older than requirements/seldon-runtime.lock.txt"):
        runtime.ensure_seldon_runtime()


def test_make_install_creates_the_runtime_with_a_progress_line() -> None:
    """What `make install` runs, here on the project's runtime (up to date: no install)."""
    runtime.ensure_seldon_runtime()  # the checkout's runtime exists after `make install`
    done = subprocess.run(
        [sys.executable, "-m", "mlops_helpers.seldon_kind.runtime"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project_root(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Seldon runtime: up to date")
    makefile = (project_root() / "Makefile").read_text()
    assert "-m mlops_helpers.seldon_kind.runtime" in makefile
    assert re.search(r"^install: .*seldon-runtime", makefile, re.MULTILINE)
