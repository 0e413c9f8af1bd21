"""The dvc_cml Jenkinsfile run the way Jenkins runs it (``tests/jenkins_shaped.py``).

The repository is the learner's sandbox: the template with ``main`` reproduced and pushed and
a pull-request branch that changes ``params.yaml``; its bare ``origin`` is what the job
clones. The Jenkinsfile is read from that clone, every ``sh`` step is its own process in the
workspace, credentials exist only inside their ``withCredentials`` blocks. After a passing
PR build, origin's PR branch holds CI's ``dvc.lock`` commit; the build of that commit is
skipped, so CI does not loop. This file builds on the local backend; the build with the S3
remote on moto is in ``test_jenkins_run_s3.py`` (its own file: each file runs on one worker).
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

BUILD_STAGES = ["Unit tests", "Lint", "DVC remote credentials", "Sync DVC remotes",
                "Reproduce", "dvc.lock up to date", "Push both remotes", "Everything pushed",
                "Compare with target", "Report", "Commit dvc.lock back"]
GIT_PUSH = UsernamePassword("ci-bot", "git-push-password-4711")
REPO_TOKEN = "cml-repo-token-value-0815"


def _origin(root: Path, **params: Any) -> Origin:
    """The sandbox's bare origin, seen as the hosted repository the job builds."""
    ctx = make_context(root, log=[], **params)
    pull_request = create_sandbox(ctx)
    return Origin(Layout(ctx.run_dir).origin_git, pull_request["change_target"],
                  pull_request["change_branch"])


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


def _passed(build: BuildResult) -> None:
    assert build.result == "SUCCESS", build.log[-4000:]
    statuses = build.statuses()
    assert all(statuses[name] == "SUCCESS" for name in ["Checkout", *BUILD_STAGES]), statuses
    assert build.post_run == ["always"] and build.killed_processes == []


def _local_pr_build(origin: Origin, root: Path, build_number: int) -> BuildResult:
    """PR #1 built on the local backend, in the same job workspace every time."""
    return run_jenkinsfile(
        origin, root / "workspace", change_id=1, build_number=build_number,
        params={"BACKEND": "local", "CI_CACHE": str(root / "agent" / "dvc-cache")},
        credentials={"git-push": GIT_PUSH,
                     "dvc-s3-remote": UsernamePassword("unused-key-id", "unused-secret-9"),
                     "cml-repo-token": REPO_TOKEN})


@pytest.fixture(scope="module")
def local_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("jenkins-dvc")
    origin = _origin(root / "sandbox")
    before = _git(origin, "rev-parse", origin.pr_branch)
    build = _local_pr_build(origin, root, build_number=1)
    return {"root": root, "origin": origin, "before": before, "build": build}


def test_pr_build_passes_and_pushes_dvc_lock_to_the_pr_branch(local_build: dict[str, Any]
                                                              ) -> None:
    build, origin = local_build["build"], local_build["origin"]
    _passed(build)
    _assert_pr_branch_holds_the_lock_commit(origin, local_build["before"])
    assert any(path.endswith("report/report.md") for path in build.archived)
    run_dir = build.workspace / "runs" / "dvc_cml-jd"
    assert "compared with main" in build.stage("Compare with target").steps[0].output
    assert "lower is better" in (run_dir / "report" / "report.md").read_text()
    # the agent's cache remote was filled, outside the workspace
    assert any((local_build["root"] / "agent" / "dvc-cache").rglob("*"))


def test_every_stage_worked_on_the_job_workspace(local_build: dict[str, Any]) -> None:
    build = local_build["build"]
    steps = build.sh_steps()
    assert {Path(step.cwd).resolve() for step in steps} == {build.workspace}
    checkout = build.stage("Checkout").steps[0].output
    assert f"{build.workspace} at" in checkout and "pull request #1" in checkout
    # the workspace is a clone of origin; nothing under the sandbox was built by the job
    assert (build.workspace / "dvc.lock").is_file() and (build.workspace / "model").is_dir()


def test_credentials_exist_only_inside_their_blocks(local_build: dict[str, Any]) -> None:
    build = local_build["build"]
    _no_secret_on_disk(build.workspace, [GIT_PUSH.password, REPO_TOKEN, "unused-secret-9"])
    assert "git-push-password-4711" not in build.log and REPO_TOKEN not in build.log
    assert "GIT_PASSWORD" not in build.env and "AWS_SECRET_ACCESS_KEY" not in build.env


def test_the_build_of_ci_own_commit_is_skipped(local_build: dict[str, Any]) -> None:
    origin, root = local_build["origin"], local_build["root"]
    head = _git(origin, "rev-parse", origin.pr_branch)
    again = _local_pr_build(origin, root, build_number=2)  # triggered by CI's own push
    assert again.result == "SUCCESS", again.log[-3000:]
    assert again.status("Checkout") == "SUCCESS" and again.status("Build") == "SKIPPED"
    assert again.sh_steps("Reproduce") == [] and again.sh_steps("Commit dvc.lock back") == []
    assert _git(origin, "rev-parse", origin.pr_branch) == head  # no new commit: no loop
