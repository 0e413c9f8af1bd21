"""The dvc_cml Jenkinsfile run the way Jenkins runs it (``tests/jenkins_shaped.py``).

The repository is the learner's sandbox: the template with ``main`` reproduced and pushed and
a pull-request branch that changes ``params.yaml``; its bare ``origin`` is what the job
clones. The Jenkinsfile is read from that clone, every ``sh`` step is its own process in the
workspace, credentials exist only inside their ``withCredentials`` blocks.

This file builds the branch ``main`` on the local backend: tests, lint and the remote sync
run, the pull-request stages are skipped and nothing is committed. The pull-request build
(reproduce, both gates, report, dvc.lock pushed to the PR branch, the skipped build of CI's
own commit) runs once, with the S3 remote on moto, in ``test_jenkins_run_s3.py`` (its own
file: each file runs on one worker); the same pull-request stages on the local backend run
in the notebook's test and in ``test_pipeline_local.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.dvc_cml.layout import Layout
from mlops_helpers.dvc_cml.shell import Shell
from mlops_helpers.dvc_cml.stages import create_sandbox
from mlops_helpers.dvc_cml.workspace import SKIP_MARKER
from tests.dvc_cml.conftest import make_context
from tests.jenkins_shaped import BuildResult, Origin, UsernamePassword, run_jenkinsfile

pytestmark = pytest.mark.jenkins

BRANCH_STAGES = ["Unit tests", "Lint", "DVC remote credentials", "Sync DVC remotes"]
PR_STAGES = [
    "Reproduce",
    "dvc.lock up to date",
    "Push both remotes",
    "Everything pushed",
    "Compare with target",
    "Report",
    "Commit dvc.lock back",
]
BUILD_STAGES = BRANCH_STAGES + PR_STAGES
GIT_PUSH = UsernamePassword("ci-bot", "git-push-password-4711")
REPO_TOKEN = "cml-repo-token-value-0815"


def _origin(root: Path, **params: Any) -> Origin:
    """The sandbox's bare origin, seen as the hosted repository the job builds."""
    ctx = make_context(root, log=[], **params)
    pull_request = create_sandbox(ctx)
    return Origin(
        Layout(ctx.run_dir).origin_git, pull_request["change_target"], pull_request["change_branch"]
    )


def _git(origin: Origin, *args: str) -> str:
    return Shell(origin.path).git(*args)


def _assert_pr_branch_holds_the_lock_commit(origin: Origin, before: str) -> str:
    head = _git(origin, "rev-parse", origin.pr_branch)
    assert head != before
    assert _git(origin, "rev-parse", f"{head}~1") == before  # on top of the PR's head
    assert SKIP_MARKER in _git(origin, "log", "-1", "--format=%s", head)
    assert "dvc.lock" in _git(origin, "diff", "--name-only", before, head).split()
    return head


def _no_secret_on_disk(workspace: Path, secrets: list[str]) -> None:
    for path in workspace.rglob("*"):
        if path.is_file() and ".git" not in path.parts and "cache" not in path.parts:
            content = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, path


def _passed(build: BuildResult, stages: list[str] = BUILD_STAGES) -> None:
    assert build.result == "SUCCESS", build.log[-4000:]
    statuses = build.statuses()
    assert all(statuses[name] == "SUCCESS" for name in ["Checkout", *stages]), statuses
    assert build.post_run == ["always"] and build.killed_processes == []


def _every_stage_worked_on_the_job_workspace(build: BuildResult, where: str) -> None:
    steps = build.sh_steps()
    assert {Path(step.cwd).resolve() for step in steps} == {build.workspace}
    checkout = build.stage("Checkout").steps[0].output
    assert f"{build.workspace} at" in checkout and where in checkout
    # the workspace is a clone of origin, its outputs fetched from the DVC remotes
    assert (build.workspace / "dvc.lock").is_file()
    assert (build.workspace / "model" / "model.pkl").is_file()


def _credentials_exist_only_inside_their_blocks(build: BuildResult, secrets: list[str]) -> None:
    _no_secret_on_disk(build.workspace, secrets)
    for secret in secrets:
        assert secret not in build.log
    assert "GIT_PASSWORD" not in build.env and "AWS_SECRET_ACCESS_KEY" not in build.env
    assert "REPO_TOKEN" not in build.env


@pytest.fixture(scope="module")
def branch_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A build of ``main`` (no pull request) on the local backend."""
    root = tmp_path_factory.mktemp("jenkins-dvc")
    origin = _origin(root / "sandbox")
    refs = _git(origin, "show-ref")
    build = run_jenkinsfile(
        origin,
        root / "workspace",
        build_number=1,
        params={"BACKEND": "local", "CI_CACHE": str(root / "agent" / "dvc-cache")},
        credentials={
            "git-push": GIT_PUSH,
            "dvc-s3-remote": UsernamePassword("unused-key-id", "unused-secret-9"),
            "cml-repo-token": REPO_TOKEN,
        },
    )
    return {"root": root, "origin": origin, "refs": refs, "build": build}


def test_branch_build_syncs_and_skips_the_pull_request_stages(branch_build: dict[str, Any]) -> None:
    build, origin = branch_build["build"], branch_build["origin"]
    _passed(build, BRANCH_STAGES)
    assert build.status("Pull request") == "SKIPPED"
    assert all(build.status(name) == "SKIPPED" for name in PR_STAGES), build.statuses()
    assert build.sh_steps("Reproduce") == [] and build.sh_steps("Commit dvc.lock back") == []
    assert "branch build" in build.stage("Checkout").steps[0].output
    assert _git(origin, "show-ref") == branch_build["refs"]  # a branch build commits nothing
    # the agent's cache remote was filled, outside the workspace
    assert any((branch_build["root"] / "agent" / "dvc-cache").rglob("*"))
    assert "unit tests: 4 passed" in build.stage("Unit tests").steps[0].output


def test_every_stage_worked_on_the_job_workspace(branch_build: dict[str, Any]) -> None:
    _every_stage_worked_on_the_job_workspace(branch_build["build"], "branch build")


def test_credentials_exist_only_inside_their_blocks(branch_build: dict[str, Any]) -> None:
    _credentials_exist_only_inside_their_blocks(
        branch_build["build"], [GIT_PUSH.password, REPO_TOKEN, "unused-secret-9"]
    )
