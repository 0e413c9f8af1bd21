"""The GitHub Actions workflow under .github/workflows/ passes actionlint (with shellcheck on
its ``run`` steps), and runs what the README promises a fork: ``make test`` and ``make run``
on pushes and pull requests, on Linux and macOS, Python 3.11 and 3.12, keeping the executed
notebooks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent  # actionlint and shellcheck come with the dev extra


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_every_workflow_passes_actionlint() -> None:
    assert WORKFLOWS, "no workflow under .github/workflows"
    done = actionlint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    """The check can fail: an unknown runner label and an undefined matrix value."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-lates\n    steps:\n"
        "      - run: echo ${{ matrix.python }}\n"
    )
    done = actionlint(broken)
    assert done.returncode == 1 and "matrix" in done.stdout, done.stdout + done.stderr


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_the_workflow_runs_both_commands_on_linux_and_macos_and_keeps_the_notebooks() -> None:
    workflow = yaml.safe_load(WORKFLOWS[0].read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    systems: set[tuple[str, str]] = set()
    for job in workflow["jobs"].values():
        assert _runs(job)[-2:] == ["make test", "make run"]
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-")]
        assert uploads and uploads[0]["with"]["path"] == "build/"
        assert uploads[0]["if"] == "always()"  # the notebooks of a failed run too
        for python in job["strategy"]["matrix"]["python"]:
            systems.add((job["runs-on"].split("-")[0], python))
    assert systems == {(s, p) for s in ("ubuntu", "macos") for p in ("3.11", "3.12")}
