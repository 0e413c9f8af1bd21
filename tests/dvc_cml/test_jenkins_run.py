"""The dvc_cml Jenkinsfile run the way Jenkins runs it (``tests/jenkins_runner``).

The repository is the learner's sandbox: the template with ``main`` reproduced and pushed and
a pull-request branch that changes ``params.yaml``; its bare ``origin`` is what the job
clones. The Jenkinsfile is read from that clone, every ``sh`` step is its own process in the
workspace, credentials exist only inside their ``withCredentials`` blocks.

This file runs the job as a fresh Jenkins has it, on the local backend: its one credential
is ``git-push`` (no ``cml-repo-token``, no ``dvc-s3-remote``: the local backend must not ask
for them), pull requests are checked out as ``refs/pull/<n>/head`` merged with the target
(GitHub Branch Source). One sandbox, four builds, in the order a team sees them:

1. PR-1 (a branch of the repository): reproduced, both gates, reported, ``dvc.lock`` pushed
   back to its branch;
2. ``main`` after PR-1 was merged by fast-forward, so its head is CI's own ``[skip ci]``
   commit: a real build of ``main`` (tests, lint, remote sync; no PR stage, no commit);
3. the build PR-1 gets from CI's own push: skipped, so CI does not loop;
4. PR-2 from a fork whose branch is also called ``main`` (``CHANGE_FORK``): the fork's commit
   is built and compared, and the commit back is refused with the reason (CI cannot push to
   a fork); origin's branches are untouched.

The same pull request on the S3 remote (moto) and CML's comment run in
``test_jenkins_run_s3.py`` (its own file: each file runs on one worker).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.dvc_cml.layout import Layout
from mlops_helpers.dvc_cml.shell import Shell
from mlops_helpers.dvc_cml.stages import create_sandbox
from mlops_helpers.dvc_cml.workspace import SKIP_MARKER
from tests.fixtures.dvc_cml import make_context
from tests.jenkins_runner import BuildResult, Origin, UsernamePassword, run_jenkinsfile

pytestmark = [pytest.mark.jenkins, pytest.mark.slow]

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
FRESH_JENKINS = {"git-push": GIT_PUSH}  # the only credential a local build may need


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


def _build(origin: Origin, root: Path, name: str, **kwargs: Any) -> BuildResult:
    return run_jenkinsfile(
        origin,
        root / f"ws-{name}",
        params={"BACKEND": "local", "CI_CACHE": str(root / "agent" / "dvc-cache")},
        credentials=FRESH_JENKINS,
        **kwargs,
    )


def _fork(origin: Origin, root: Path, owner: str) -> Origin:
    """``owner``'s fork of ``origin``, whose ``main`` changes ``train.C`` without
    reproducing (its dvc.lock is stale, as a contributor's often is)."""
    fork = root / f"fork-{owner}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(origin.path), str(fork)], check=True)
    clone = root / f"clone-{owner}"
    subprocess.run(["git", "clone", "-q", str(fork), str(clone)], check=True)
    params = clone / "params.yaml"
    params.write_text(params.read_text().replace("C: ", "C: 0.031 # was ", 1))
    identity = ["-c", f"user.name={owner}", "-c", f"user.email={owner}@example.invalid"]
    subprocess.run(["git", *identity, "commit", "-qam", "Try C=0.031"], cwd=clone, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=clone, check=True)
    return Origin(origin.path, "main", "main", fork=owner, fork_path=fork)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("jenkins-dvc")
    origin = _origin(root / "sandbox")
    before = _git(origin, "rev-parse", origin.pr_branch)
    pr = _build(origin, root, "PR-1", change_id=1, build_number=1)
    pushed = _git(origin, "rev-parse", origin.pr_branch)
    # PR-1 is merged by fast-forward: main's head is now CI's own dvc.lock commit
    _git(origin, "update-ref", "refs/heads/main", pushed)
    refs = _git(origin, "show-ref")
    main = _build(origin, root, "main", build_number=1)
    refs_after_main = _git(origin, "show-ref")
    again = _build(origin, root, "PR-1", change_id=1, build_number=2)
    fork = _fork(origin, root, "contributor")
    origin_heads = _git(origin, "for-each-ref", "refs/heads")
    forked = _build(fork, root, "PR-2", change_id=2, build_number=1)
    return {
        "root": root,
        "origin": origin,
        "before": before,
        "pr": pr,
        "refs": refs,
        "main": main,
        "refs_after_main": refs_after_main,
        "again": again,
        "fork": fork,
        "origin_heads": origin_heads,
        "forked": forked,
    }


def test_a_pull_request_on_the_local_backend_needs_no_cloud_credential(
    builds: dict[str, Any],
) -> None:
    """Report and commit back run without cml-repo-token, the DVC stages without
    dvc-s3-remote: the local backend posts no comment and its remotes are folders."""
    build = builds["pr"]
    _passed(build)
    assert "Could not find credentials" not in build.log
    assert (build.workspace / "runs/dvc_cml-jd/report/report.md").is_file()
    _assert_pr_branch_holds_the_lock_commit(builds["origin"], builds["before"])


def test_main_whose_head_is_ci_own_commit_is_built(builds: dict[str, Any]) -> None:
    """After a fast-forward merge main's head carries [skip ci]; CI never pushes to main,
    so no build of main is CI's own, and it runs: the PR stages skipped, nothing committed."""
    build, origin = builds["main"], builds["origin"]
    assert SKIP_MARKER in _git(origin, "log", "-1", "--format=%B", "main")
    _passed(build, BRANCH_STAGES)
    assert build.status("Build") == "SUCCESS" and build.status("Pull request") == "SKIPPED"
    assert all(build.status(name) == "SKIPPED" for name in PR_STAGES), build.statuses()
    assert build.sh_steps("Reproduce") == [] and build.sh_steps("Commit dvc.lock back") == []
    assert "branch build" in build.stage("Checkout").steps[0].output
    assert builds["refs_after_main"] == builds["refs"]  # a branch build commits nothing
    # the agent's cache remote was filled, outside the workspace
    assert any((builds["root"] / "agent" / "dvc-cache").rglob("*"))
    assert "unit tests: 4 passed" in build.stage("Unit tests").steps[0].output


def test_every_stage_worked_on_the_job_workspace(builds: dict[str, Any]) -> None:
    _every_stage_worked_on_the_job_workspace(builds["main"], "branch build")
    _every_stage_worked_on_the_job_workspace(builds["pr"], "pull request #1")


def test_credentials_exist_only_inside_their_blocks(builds: dict[str, Any]) -> None:
    for name in ("pr", "main", "forked"):
        _credentials_exist_only_inside_their_blocks(builds[name], [GIT_PUSH.password])


def test_the_build_ci_own_push_triggers_is_skipped(builds: dict[str, Any]) -> None:
    again, origin = builds["again"], builds["origin"]
    assert again.result == "SUCCESS", again.log[-3000:]
    assert again.status("Checkout") == "SUCCESS" and again.status("Build") == "SKIPPED"
    assert again.sh_steps("Reproduce") == []
    assert _git(origin, "rev-parse", origin.pr_branch) == _git(origin, "rev-parse", "main")


def test_a_fork_pull_request_builds_the_fork_commit(builds: dict[str, Any]) -> None:
    forked, fork = builds["forked"], builds["fork"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=forked.workspace, capture_output=True, text=True
    ).stdout.strip()
    assert head == _git(fork, "rev-parse", "refs/pull/2/head")  # the fork's own commit
    assert forked.env["CHANGE_FORK"] == "contributor"
    assert "pull request #2: contributor:main -> main" in forked.stage("Checkout").steps[0].output
    assert "train" in forked.stage("Reproduce").steps[0].output  # C changed: train ran
    assert "compared with main" in forked.stage("Compare with target").steps[0].output
    assert "0.031" in (forked.workspace / "runs/dvc_cml-jd/report/compare.json").read_text()


def test_a_fork_pull_request_is_never_pushed_to_origin(builds: dict[str, Any]) -> None:
    forked = builds["forked"]
    assert forked.result == "FAILURE", forked.log[-3000:]
    assert forked.status("Report") == "SUCCESS"
    assert forked.status("Commit dvc.lock back") == "FAILURE"
    (step,) = forked.sh_steps("Commit dvc.lock back")
    assert "error: pull request #2 comes from the fork 'contributor'" in step.output
    assert "commit dvc.lock on your branch 'main'" in step.output
    assert _git(builds["origin"], "for-each-ref", "refs/heads") == builds["origin_heads"]
    assert forked.post_run == ["always"] and forked.killed_processes == []
