"""The room image's environment, reproduced without Docker: the build context as Docker sees it
(.dockerignore applied by the docker SDK's own reader), the Dockerfile's build steps run in a
copy of it, then notebook 01 (seldon_kind, which needs the Seldon runtime and its stamp) run
headless in the environment they built, as an attendee's kernel would run it.

The steps reuse this machine's uv and uv cache (requirements/env.sh), so no package is
downloaded twice; the Dockerfile's apt-get and user steps are the image's, not the venv's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_helpers.paths import project_root

pytestmark = [pytest.mark.room, pytest.mark.slow]

ROOT = project_root()
DOCKERFILE = ROOT / "deploy" / "room" / "Dockerfile"
# What builds the environments, in the Dockerfile's order (each also checked to be there).
BUILD_STEPS = ["requirements/env.sh sync .venv requirements/project.lock.txt", "make install"]


def build_context(target: Path) -> None:
    """Copy what `docker build .` would send (without .git: a clone's, not a worktree's)."""
    from docker.utils.build import exclude_paths

    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in patterns if p.strip() and not p.startswith("#")]
    for name in sorted(exclude_paths(str(ROOT), patterns, dockerfile=str(DOCKERFILE))):
        source = ROOT / name
        if name == ".git" or name.startswith(".git/") or not source.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)


def run_steps(checkout: Path, env: dict[str, str]) -> None:
    for step in BUILD_STEPS:
        done = subprocess.run(
            ["bash", "-c", step],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{step}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_notebook_01_runs_in_the_images_environment(tmp_path: Path) -> None:
    dockerfile = DOCKERFILE.read_text()
    runs = [" ".join(r.split()) for r in re.findall(r"^RUN (.+?)(?:\s*\\$|$)", dockerfile, re.M)]
    assert [r for r in runs if r in BUILD_STEPS] == BUILD_STEPS, runs
    checkout_in_image = re.search(r"MLOPS_PROJECT_ROOT=(\S+)", dockerfile).group(1)
    assert re.search(rf"^WORKDIR {re.escape(checkout_in_image)}$", dockerfile, re.M)

    checkout = tmp_path / "mlops-workshop"
    build_context(checkout)
    assert not (checkout / ".venv").exists() and not (checkout / "runs").exists()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "MLOPS_", "PYTEST_", "JUPYTER"))
    }
    run_steps(checkout, env)
    assert (checkout / ".venvs" / "seldon" / ".requirements.sha256").is_file()  # the stamp

    # the image's ENV: its checkout as the project root, its .venv first on PATH
    env |= {
        "MLOPS_PROJECT_ROOT": str(checkout),
        "PATH": f"{checkout / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
        "MLOPS_RUN_ROOT": str(tmp_path / "runs"),
        "MLOPS_ATTENDEE": "img",
    }
    done = subprocess.run(
        [
            str(checkout / ".venv" / "bin" / "mlops-workshop"),
            "run",
            "seldon_kind",
            "--output-dir",
            str(tmp_path / "executed"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert list((tmp_path / "executed").glob("01_seldon_kind*.ipynb")), done.stdout[-2000:]
