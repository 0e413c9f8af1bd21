"""The agents a Jenkinsfile asks for, and the images this repository builds for them.

A Jenkins installation can only give a build an agent whose image exists: ``dockerfile``
agents are built by Jenkins from the checkout, ``docker`` and ``kubernetes`` agents pull a
named image, which somebody must have built. The workshop builds its named images with
``make agent-images`` (one ``docker build -t NAME -f DOCKERFILE .`` per image, from the
checkout and the lock files); ``agent_images`` reads that recipe with ``make -n``, so the
Makefile stays the one list. Used by ``run_jenkinsfile`` and the Dockerfile tests.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.jenkins_runner.declarative import JenkinsfileError, PipelineDef, pod_images
from tests.jenkins_runner.groovy import Literal

MAKE_TARGET = "agent-images"


@dataclass(frozen=True)
class AgentImage:
    name: str  # name:tag, as the Jenkinsfiles name it
    dockerfile: str  # relative to the repository root
    context: str  # the build context, relative to the repository root


def agent_images(tree: Path) -> dict[str, AgentImage]:
    """name -> how ``make agent-images`` in ``tree`` builds it (empty: no such target)."""
    if not (tree / "Makefile").is_file():
        return {}
    done = subprocess.run(
        ["make", "-s", "-n", "-C", str(tree), MAKE_TARGET],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return {}
    images: dict[str, AgentImage] = {}
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if words[:2] != ["docker", "build"]:
            continue
        tag = words[words.index("-t") + 1] if "-t" in words else None
        dockerfile = words[words.index("-f") + 1] if "-f" in words else "Dockerfile"
        if tag is None:
            raise JenkinsfileError(f"make {MAKE_TARGET}: `{line}` builds an image with no -t name")
        images[tag] = AgentImage(tag, dockerfile, words[-1])
    return images


def check_agents(pipeline: PipelineDef, workspace: Path, images: dict[str, AgentImage]) -> None:
    """Every agent must be one this repository can provide: a ``dockerfile`` agent's file is
    in the checkout; a ``docker``/``kubernetes`` agent's images are built by ``images``."""
    for agent in pipeline.agents():
        for path in (agent.dockerfile, agent.pod_file):
            if path is not None and not (workspace / path).is_file():
                raise JenkinsfileError(
                    f"line {agent.line}: the agent's {path} is not in the repository: "
                    f"Jenkins cannot start the agent"
                )
        if agent.pod_file is not None:
            text = (workspace / agent.pod_file).read_text()
            agent.images = pod_images(text, Literal(None, line=agent.line))
        for image in agent.images:
            if image not in images:
                raise JenkinsfileError(
                    f"line {agent.line}: agent image {image!r} is built by nothing in the "
                    f"repository (`make {MAKE_TARGET}` builds {sorted(images) or 'nothing'}): "
                    f"no Jenkins can pull it"
                )
