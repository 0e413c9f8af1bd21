"""Run a declarative Jenkinsfile the way Jenkins runs it, so the file itself is what is tested.

Usage::

    from tests.jenkins_shaped import UsernamePassword, make_origin, run_jenkinsfile

    origin = make_origin(source_tree, tmp_path / "origin.git", pr_branch="feature",
                         change_pr=lambda tree: (tree / "params.yaml").write_text("..."))
    build = run_jenkinsfile(
        origin, tmp_path / "workspace",
        script_path="Jenkinsfile",            # inside the repository, as in a multibranch job
        change_id=7,                          # a PR build: PR-7, feature -> main
        params={"BACKEND": "local"},          # unknown names or choices are an error
        credentials={"dvc-s3-remote": UsernamePassword("AKIA...", "secret"),
                     "cml-repo-token": "token-value"},
    )
    assert build.result == "SUCCESS", build.log
    assert build.status("Reproduce") == "SUCCESS"
    assert build.stage("Report").steps[0].exit_code == 0
    assert build.post_run == ["always"] and build.killed_processes == []

What is Jenkins-shaped here:

- The workspace is a real ``git clone`` of a bare ``origin`` with a target branch and a PR
  branch, checked out on a detached HEAD at the built commit, as the Git plugin does; a second
  build in the same workspace fetches and checks out again, keeping untracked files.
- The job's environment: ``WORKSPACE``, ``BRANCH_NAME``, ``CHANGE_ID``/``CHANGE_TARGET``/
  ``CHANGE_BRANCH`` (PR builds only), ``BUILD_NUMBER``, ``BUILD_ID``, ``JOB_NAME``,
  ``BUILD_URL``, ``GIT_COMMIT``, ``GIT_BRANCH``, ``GIT_URL``, every parameter, then the
  ``environment`` directive. The agent's own environment is small (``PATH``, ``HOME``, locale,
  a git identity) plus ``agent_env``; nothing else leaks in from the test process. ``PATH``
  starts with the running interpreter's ``bin`` directory, so ``mlops-workshop`` and
  ``python`` are this project's.
- Every ``sh`` step is its own ``sh -xe`` process, and that ``sh`` is dash, as on a Debian
  agent (no ``pipefail``: a command failing inside a pipe or a ``$(...)`` that feeds one goes
  unseen, exactly as on Jenkins), started in the workspace (or ``dir``), its output written
  to a file as Jenkins' durable task does (so a server it starts may outlive the step).
- A PR build checks out ``refs/pull/<id>/head`` merged with its target, as GitHub Branch
  Source does (only those two refs are fetched); a PR from a fork sets ``CHANGE_FORK``.
- Agents: an ``agent`` whose image the repository does not build is an error; a stage with
  no agent (``agent none`` at the top and on the stage) has no workspace, so ``sh`` fails
  there; a pipeline-level agent is held through every stage, also while ``input`` waits.
- Credentials exist only as passed: a fresh Jenkins has none, and a step binding a missing
  one fails. ``input`` honours ``submitter``.
- ``withCredentials`` bindings (``usernamePassword``, ``string``, ``file``) exist as variables
  only inside their block; every bound value is masked as ``****`` in recorded output.
- A failed stage skips the later stages; ``post`` blocks (pipeline and stage level: always,
  success, failure, unsuccessful, aborted, unstable, cleanup) run in Jenkins' order.
- ``when``: ``branch``, ``changeRequest``, ``expression``, ``environment``, ``buildingTag``,
  ``tag``, ``not``/``allOf``/``anyOf``. ``script`` blocks: a Groovy subset (``def``/typed
  declarations, ``if``/``else``, ``env.X = ...``, closures with ``each``/``collect``, string
  and list methods, ``sh(returnStdout/returnStatus)``, ``input``, ``withEnv``, ``timeout``,
  ``waitUntil``, ``error``). ``echo``, ``archiveArtifacts`` and ``junit`` are recorded.
- At the end of the build, Jenkins' ProcessTreeKiller: every process still carrying this
  build's ``JENKINS_NODE_COOKIE`` is listed in ``killed_processes`` and killed.

Anything the runner does not understand raises ``JenkinsfileError`` (with the line): it
never guesses. Groovy failures at run time (an unknown property, ``error``, a non-zero
``sh``) fail the stage, as in Jenkins.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from mlops_helpers.errors import WaitTimeout
from mlops_helpers.waiting import wait_until
from tests.jenkins_agents import AgentImage, agent_images, check_agents
from tests.jenkins_declarative import JenkinsfileError, PipelineDef, load_jenkinsfile
from tests.jenkins_steps import (
    MASK,
    Credential,
    SecretFile,
    StageRecord,
    StepRecord,
    UsernamePassword,
    _Build,
    _text,
)
from tests.support import leftover_processes, marked_processes

__all__ = [
    "MASK",
    "BuildResult",
    "Credential",
    "JenkinsfileError",
    "Origin",
    "PipelineDef",
    "SecretFile",
    "StageRecord",
    "StepRecord",
    "UsernamePassword",
    "checkout",
    "load_jenkinsfile",
    "make_origin",
    "project_tree",
    "run_jenkinsfile",
]

JENKINS_URL = "http://127.0.0.1:8080/"
_IGNORED_IN_TREES = (
    ".git",
    ".venv",
    ".venvs",
    ".tools",
    "build",
    "runs",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    ".env",
    "node_modules",
    ".dvc/cache",
    ".dvc/tmp",
)


@dataclass
class BuildResult:
    """One build: its result, every stage (nested ones name their ``parent``) in order, every
    step (``sh`` with command, exit code and masked output; echo, input, archiveArtifacts ...),
    the pipeline-level post conditions that ran, the masked console log, the final build-wide
    environment (masked), archived paths and what the ProcessTreeKiller had to kill."""

    result: str  # SUCCESS, FAILURE, ABORTED
    stages: list[StageRecord]
    post_run: list[str]
    steps: list[StepRecord]
    log: str
    workspace: Path
    env: dict[str, str]
    archived: list[str]
    killed_processes: list[str]

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def status(self, name: str) -> str:
        return self.stage(name).status

    def statuses(self) -> dict[str, str]:
        return {s.name: s.status for s in self.stages}

    def sh_steps(self, stage: str | None = None) -> list[StepRecord]:
        return [s for s in self.steps if s.step == "sh" and (stage is None or s.stage == stage)]

    @property
    def succeeded(self) -> bool:
        return self.result == "SUCCESS"


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


# -- repositories -----------------------------------------------------------------------
@dataclass(frozen=True)
class Origin:
    """A bare repository standing in for the hosted one: a target branch and a PR branch.

    ``fork`` set: the PR branch lives in ``fork_path``, the fork of the repository that
    the user ``fork`` owns (``CHANGE_FORK``), not in ``path``; its name may even be the
    target's (``main``)."""

    path: Path
    target_branch: str = "main"
    pr_branch: str | None = "feature"
    fork: str | None = None
    fork_path: Path | None = None

    @property
    def url(self) -> str:
        return str(self.path)

    @property
    def pr_repository(self) -> Path:
        """Where the PR branch lives: the fork, or the repository itself."""
        return self.fork_path if self.fork_path is not None else self.path


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Jenkins Test",
            "-c",
            "user.email=jenkins@example.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{done.stderr}")
    return done.stdout.strip()


def project_tree() -> Path:
    """This project's checkout: the repository the scenarios' Jenkinsfiles live in."""
    return Path(__file__).resolve().parents[1]


def _source_files(source: Path, ignore: tuple[str, ...]) -> list[str]:
    """What a commit of ``source`` would hold now: in a git work tree, tracked and untracked
    files that are not ignored; elsewhere every file outside the ``ignore`` patterns."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        timeout=60,
    )
    if listed.returncode == 0:
        names = [n for n in listed.stdout.decode().split("\0") if n]
    else:
        names = [str(p.relative_to(source)) for p in source.rglob("*")]
    return [
        n
        for n in names
        if not any(fnmatch.fnmatch(part, pattern) for part in Path(n).parts for pattern in ignore)
    ]


def _copy_tree(source: Path, target: Path, ignore: tuple[str, ...]) -> None:
    """Copy regular files and symlinks (never sockets or pipes a running kernel left); a file
    that vanishes while we copy (someone is editing the tree) is skipped."""
    target.mkdir(parents=True)
    for name in _source_files(source, ignore):
        src, dst = source / name, target / name
        try:
            mode = src.lstat().st_mode
        except FileNotFoundError:
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(mode):
                dst.symlink_to(os.readlink(src))
            else:
                shutil.copy2(src, dst)


def make_origin(
    source: Path,
    bare: Path,
    *,
    target_branch: str = "main",
    pr_branch: str | None = "feature",
    change_pr: Callable[[Path], None] | None = None,
    ignore: Iterable[str] = _IGNORED_IN_TREES,
    fork: str | None = None,
) -> Origin:
    """A bare repository at ``bare`` whose ``target_branch`` holds ``source`` as a commit of
    it would now (in a git work tree: tracked and untracked-but-not-ignored files, so the
    shared tree's uncommitted edits are in; never virtualenvs, caches, runs or ``.env``) and
    whose ``pr_branch`` adds one commit on top, made by ``change_pr(tree)`` (empty if None).
    ``pr_branch=None``: a repository with the target branch only. ``fork``: the PR branch
    is pushed to a fork owned by that user (``<bare>-<fork>.git``), never to ``bare``."""
    seed = bare.parent / f"{bare.name}.seed"
    _copy_tree(source, seed, tuple(ignore))
    _git(seed, "init", "-q", "-b", target_branch)
    _git(seed, "add", "-A")
    _git(seed, "commit", "-q", "--allow-empty", "-m", "initial import")
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git(bare.parent, "init", "-q", "--bare", str(bare))
    _git(seed, "push", "-q", str(bare), f"refs/heads/{target_branch}")
    fork_path = None
    if pr_branch:
        pr_repository = bare
        if fork:  # the fork starts as a copy of the repository
            fork_path = bare.parent / f"{bare.name.removesuffix('.git')}-{fork}.git"
            _git(bare.parent, "init", "-q", "--bare", str(fork_path))
            _git(seed, "push", "-q", str(fork_path), f"refs/heads/{target_branch}")
            pr_repository = fork_path
        if pr_branch != target_branch:
            _git(seed, "checkout", "-q", "-b", pr_branch)
        if change_pr is not None:
            change_pr(seed)
        _git(seed, "add", "-A")
        _git(seed, "commit", "-q", "--allow-empty", "-m", f"change on {pr_branch}")
        _git(seed, "push", "-q", "-f", str(pr_repository), f"HEAD:refs/heads/{pr_branch}")
    shutil.rmtree(seed)
    return Origin(bare, target_branch, pr_branch, fork, fork_path)


def _open_pull_request(origin: Origin, change_id: int) -> str:
    """What GitHub does for every pull request, from a fork or not: ``refs/pull/<id>/head``
    in the base repository is the PR branch's head. Returns that commit."""
    if origin.pr_branch is None:
        raise ValueError("a PR build needs an origin with a pr_branch")
    ref = f"refs/pull/{change_id}/head"
    _git(
        origin.path,
        "fetch",
        "-q",
        str(origin.pr_repository),
        f"+refs/heads/{origin.pr_branch}:{ref}",
    )
    return _git(origin.path, "rev-parse", ref)


def _workspace_repo(origin: Origin, workspace: Path) -> None:
    if not (workspace / ".git").is_dir():
        workspace.mkdir(parents=True, exist_ok=True)
        _git(workspace, "init", "-q")
        _git(workspace, "remote", "add", "origin", origin.url)


def checkout(origin: Origin, workspace: Path, branch: str) -> str:
    """Clone (or fetch into) ``workspace`` and check out ``branch``'s head on a detached HEAD,
    as the Git plugin does (only that branch is fetched: GitHub Branch Source's narrow
    refspec); untracked files of an earlier build stay. Returns the commit."""
    _workspace_repo(origin, workspace)
    refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
    _git(workspace, "fetch", "-q", "--no-tags", "origin", refspec)
    commit = _git(workspace, "rev-parse", f"refs/remotes/origin/{branch}^{{commit}}")
    _git(workspace, "checkout", "-q", "-f", commit)
    return commit


def checkout_pull_request(
    origin: Origin, workspace: Path, change_id: int, strategy: str = "merge"
) -> str:
    """A PR build's checkout, as GitHub Branch Source does it: fetch ``refs/pull/<id>/head``
    (as ``origin/PR-<id>``) and the target branch, check the PR head out on a detached HEAD,
    and with the default ``merge`` strategy merge the target into it (Jenkins' own merge
    commit; none when the PR already contains the target). ``strategy="head"``: the PR head
    as it is. A fork's PR comes the same way: its branch is never fetched by name."""
    head = _open_pull_request(origin, change_id)
    _workspace_repo(origin, workspace)
    pr_ref, target = f"refs/remotes/origin/PR-{change_id}", origin.target_branch
    _git(
        workspace,
        "fetch",
        "-q",
        "--no-tags",
        "origin",
        f"+refs/pull/{change_id}/head:{pr_ref}",
        f"+refs/heads/{target}:refs/remotes/origin/{target}",
    )
    _git(workspace, "checkout", "-q", "-f", head)
    if strategy == "merge":
        _git(workspace, "merge", "-q", "--no-edit", f"refs/remotes/origin/{target}")
    elif strategy != "head":
        raise ValueError(f"strategy {strategy!r} is not one of 'merge', 'head'")
    return _git(workspace, "rev-parse", "HEAD")


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
    env.update({name: _text(value) for name, value in resolved.items()})
    build = _Build(
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
