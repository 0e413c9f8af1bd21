"""Checks that every scenario's tests share: Jenkinsfile lint and sync, leftover processes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mlops_helpers.jenkins import jenkinsfile_stage_calls
from mlops_helpers.paths import project_root

ROOT = project_root()


def groovy_lint(path: Path) -> None:
    """npm-groovy-lint must report no errors (``make test`` installs it under .tools/)."""
    exe = shutil.which("npm-groovy-lint") or str(
        ROOT / ".tools" / "node_modules" / ".bin" / "npm-groovy-lint")
    assert Path(exe).exists(), "npm-groovy-lint is missing: run `make tools`"
    done = subprocess.run(
        [exe, "--failon", "error", "--output", "txt", "--noserver", str(path)],
        capture_output=True, text=True, timeout=300, cwd=path.parent,
    )
    assert done.returncode == 0, f"npm-groovy-lint found errors in {path}:\n{done.stdout}"
    assert "Error" in done.stdout, f"npm-groovy-lint printed no summary:\n{done.stdout}"


def assert_stages_match(scenario: str, jenkinsfile: Path, stage_names: list[str]) -> None:
    calls = jenkinsfile_stage_calls(jenkinsfile, scenario)
    assert calls == stage_names, (
        f"{jenkinsfile} calls stages {calls}, but the CLI's stage list is {stage_names}")


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def leftover_processes(marker: str) -> list[str]:
    """Live processes (not us or our parents) whose command line or environment has ``marker``.

    Tests set ``MLOPS_RUN_ROOT`` to a temporary folder; every process a notebook or stage
    starts inherits it, so a survivor is found even when its command line is generic.
    """
    mine = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (marker in cmdline or marker in environ) and state != "Z":
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found
