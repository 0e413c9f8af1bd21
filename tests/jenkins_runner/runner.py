"""``run_jenkinsfile``: check a repository out as a multibranch job does, give the build
Jenkins' environment, run the pipeline, and at the end kill what the build left running
(Jenkins' ProcessTreeKiller)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from mlops_helpers.errors import WaitTimeout
from mlops_helpers.waiting import wait_until
from tests.jenkins_runner.agents import AgentImage, agent_images, check_agents
from tests.jenkins_runner.build import Build
from tests.jenkins_runner.credentials import Credential
from tests.jenkins_runner.declarative import JenkinsfileError, PipelineDef, load_jenkinsfile
from tests.jenkins_runner.evaluate import gstring
from tests.jenkins_runner.records import BuildResult
from tests.jenkins_runner.repository import (
    Origin,
    checkout,
    checkout_pull_request,
    project_tree,
)
from tests.support import leftover_processes, marked_processes

JENKINS_URL = "http://127.0.0.1:8080/"


# -- ProcessTreeKiller ------------------------------------------------------------------
def _kill_build_processes(cookie: str) -> list[str]:
    """Kill what the build left running, as Jenkins does at the end of a build (every process
    carrying its JENKINS_NODE_COOKIE); return them as "pid: command line"."""
    leftovers = leftover_processes(cookie)  # the cookie is a fresh uuid: only this build's
    for proc in marked_processes(cookie):
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    with contextlib.suppress(WaitTimeout):  # then SIGKILL what is left
        wait_until(
            lambda: marked_processes(cookie),
            what="the build's processes to exit",
            timeout=10,
            interval=0.1,
            until=lambda left: not left,
            progress=False,
        )
    for proc in marked_processes(cookie):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return leftovers


# -- the entry point --------------------------------------------------------------------
def _agent_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The agent's own environment: small, and with this interpreter's bin first on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "SHELL": "/bin/bash",
        "USER": os.environ.get("USER", "jenkins"),
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "GIT_AUTHOR_NAME": "Jenkins",
        "GIT_AUTHOR_EMAIL": "jenkins@example.invalid",
        "GIT_COMMITTER_NAME": "Jenkins",
        "GIT_COMMITTER_EMAIL": "jenkins@example.invalid",
    }
    env.update(extra or {})
    return env


def _resolve_params(pipeline: PipelineDef, given: Mapping[str, Any]) -> dict[str, Any]:
    known = {p.name: p for p in pipeline.parameters}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise JenkinsfileError(
            f"unknown parameter(s) {unknown}; the Jenkinsfile declares {sorted(known)}"
        )
    params = {name: p.default for name, p in known.items()}
    for name, value in given.items():
        parameter = known[name]
        if parameter.kind == "choice" and str(value) not in parameter.choices:
            raise JenkinsfileError(f"parameter {name}={value!r} is not one of {parameter.choices}")
        params[name] = bool(value) if parameter.kind == "booleanParam" else str(value)
    return params


def run_jenkinsfile(
    origin: Origin,
    workspace: Path,
    *,
    script_path: str = "Jenkinsfile",
    change_id: int | None = None,
    branch: str | None = None,
    params: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Credential] | None = None,
    agent_env: Mapping[str, str] | None = None,
    build_number: int = 1,
    job_name: str = "workshop",
    approver: str | None = "admin",
    timeout: float = 900.0,
    kill_leftovers: bool = True,
    pr_strategy: str = "merge",
    approver_groups: Iterable[str] = (),
    images: Mapping[str, AgentImage] | None = None,
) -> BuildResult:
    """Check ``origin`` out into ``workspace`` and run its Jenkinsfile as a multibranch job.

    ``change_id`` set: a PR build (``BRANCH_NAME=PR-<id>``) of ``origin.pr_branch`` (in
    ``origin.fork``'s fork when set: ``CHANGE_FORK``) into ``origin.target_branch``, checked
    out as ``refs/pull/<id>/head`` merged with the target (``pr_strategy="head"``: unmerged);
    otherwise a build of ``branch`` (default: the target branch).
    ``credentials``: only these exist, as on a fresh Jenkins; a step that asks for another
    one fails ("Could not find credentials entry").
    ``approver``: who answers ``input`` steps (None rejects them: the build is ABORTED), a
    member of ``approver_groups``; an input whose ``submitter`` names neither is never
    answered (ABORTED when its timeout ends).
    ``images``: the agent images the Jenkins installation has (default: what
    ``make agent-images`` of the checkout, else of this project, builds); an agent that
    needs another image, or a ``dockerfile`` not in the checkout, is a ``JenkinsfileError``.
    ``timeout`` bounds the whole build (the pipeline's own ``timeout`` option may be shorter).
    Raises ``JenkinsfileError`` for a file or parameter the runner does not understand.
    """
    workspace = workspace.resolve()
    if change_id is not None:
        if origin.pr_branch is None:
            raise ValueError("a PR build needs an origin with a pr_branch")
        built, branch_name = origin.pr_branch, f"PR-{change_id}"
        commit = checkout_pull_request(origin, workspace, change_id, pr_strategy)
    else:
        built = branch_name = branch or origin.target_branch
        commit = checkout(origin, workspace, built)
    pipeline = load_jenkinsfile(workspace / script_path)
    if images is None:
        images = agent_images(workspace) or agent_images(project_tree())
    check_agents(pipeline, workspace, dict(images))
    resolved = _resolve_params(pipeline, params or {})
    cookie = uuid.uuid4().hex
    job = f"{job_name}/{branch_name}"
    build_url = f"{JENKINS_URL}job/{job_name}/job/{branch_name}/{build_number}/"
    env = _agent_env(agent_env)
    env.update(
        {
            "WORKSPACE": str(workspace),
            "BRANCH_NAME": branch_name,
            "BUILD_NUMBER": str(build_number),
            "BUILD_ID": str(build_number),
            "BUILD_DISPLAY_NAME": f"#{build_number}",
            "JOB_NAME": job,
            "JOB_BASE_NAME": branch_name,
            "BUILD_TAG": f"jenkins-{job.replace('/', '-')}-{build_number}",
            "BUILD_URL": build_url,
            "JOB_URL": build_url.rsplit(f"{build_number}/", 1)[0],
            "JENKINS_URL": JENKINS_URL,
            "NODE_NAME": "built-in",
            "EXECUTOR_NUMBER": "0",
            "GIT_COMMIT": commit,
            "GIT_BRANCH": branch_name,
            "GIT_URL": origin.url,
            "JENKINS_NODE_COOKIE": cookie,
        }
    )
    if change_id is not None:
        env.update(
            {
                "CHANGE_ID": str(change_id),
                "CHANGE_TARGET": origin.target_branch,
                "CHANGE_BRANCH": built,
                "CHANGE_TITLE": f"Change on {built}",
                "CHANGE_AUTHOR": "attendee",
                "CHANGE_URL": f"{origin.url}/pull/{change_id}",
            }
        )
        if origin.fork:
            env["CHANGE_FORK"] = origin.fork
    env.update({name: gstring(value) for name, value in resolved.items()})
    build = Build(
        pipeline,
        workspace,
        env,
        resolved,
        credentials or {},
        approver,
        timeout,
        tuple(approver_groups),
    )
    try:
        build.run()
    finally:
        killed = _kill_build_processes(cookie) if kill_leftovers else []
        shutil.rmtree(build.tmp, ignore_errors=True)
    return BuildResult(
        build.result,
        build.stages,
        build.post_run,
        build.steps,
        "\n".join(build.log_lines),
        workspace,
        {k: build.mask(v) for k, v in build.env.items()},
        build.archived,
        killed,
    )
