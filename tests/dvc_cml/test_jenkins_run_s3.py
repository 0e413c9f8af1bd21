"""The dvc_cml Jenkinsfile's pull-request build, run the way Jenkins runs it, with the shared
DVC remote on S3 (moto on loopback) and the report posted through ``cml comment create``.

One PR build for the module: reproduce, both gates, compare, report, dvc.lock pushed to the
PR branch; then the build that CI's own push triggers, which is skipped, so CI does not
loop. See ``test_jenkins_run.py`` for the branch build on the local backend and the helpers
both use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dvc_cml.support import (
    bucket_keys,
    cml_calls,
    install_recording_cml,
    moto_s3,
    s3_params,
)
from tests.dvc_cml.test_jenkins_run import (
    GIT_PUSH,
    REPO_TOKEN,
    _assert_pr_branch_holds_the_lock_commit,
    _credentials_exist_only_inside_their_blocks,
    _every_stage_worked_on_the_job_workspace,
    _git,
    _origin,
    _passed,
)
from tests.jenkins_runner import BuildResult, Origin, UsernamePassword, run_jenkinsfile

pytestmark = pytest.mark.jenkins


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    with moto_s3() as server:
        yield server


def _pr_build(origin: Origin, root: Path, s3: dict[str, Any], build_number: int) -> BuildResult:
    """PR #1 on the s3 backend, in the same job workspace every time; ``cml`` records."""
    path = os.pathsep.join(
        [
            str(Path(sys.executable).parent),
            str(root / "bin"),
            os.environ.get("PATH", "/usr/bin:/bin"),
        ]
    )
    return run_jenkinsfile(
        origin,
        root / "workspace",
        change_id=1,
        build_number=build_number,
        params={
            "BACKEND": "s3",
            "AWS_REGION": "us-east-1",
            "S3_ENDPOINT_URL": s3["url"],
            "CI_CACHE": str(root / "agent" / "dvc-cache"),
        },
        credentials={
            "git-push": GIT_PUSH,
            "dvc-s3-remote": UsernamePassword(s3["key_id"], s3["secret"]),
            "cml-repo-token": REPO_TOKEN,
        },
        agent_env={"PATH": path},
    )


@pytest.fixture(scope="module")
def pr_build(s3: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("jenkins-dvc-s3")
    origin = _origin(root / "sandbox", **s3_params(s3))
    before = _git(origin, "rev-parse", origin.pr_branch)
    keys_before = bucket_keys(s3)
    record = root / "cml-calls.tsv"
    install_recording_cml(root / "bin", record)
    build = _pr_build(origin, root, s3, build_number=1)
    return {
        "root": root,
        "origin": origin,
        "before": before,
        "keys_before": keys_before,
        "keys_after": bucket_keys(s3),
        "record": record,
        "build": build,
    }


def test_pr_build_on_the_s3_remote(pr_build: dict[str, Any]) -> None:
    build, origin = pr_build["build"], pr_build["origin"]
    _passed(build)
    _assert_pr_branch_holds_the_lock_commit(origin, pr_build["before"])
    # the pull request's model
    assert len(pr_build["keys_after"]) == len(pr_build["keys_before"]) + 1
    [call] = cml_calls(pr_build["record"])
    assert call["target"] == "pr/1" and Path(call["cwd"]) == build.workspace
    assert "report posted to pr/1" in build.stage("Report").steps[0].output


def test_report_compares_with_the_target_and_is_archived(pr_build: dict[str, Any]) -> None:
    build = pr_build["build"]
    assert any(path.endswith("report/report.md") for path in build.archived)
    run_dir = build.workspace / "runs" / "dvc_cml-jd"
    assert "compared with main" in build.stage("Compare with target").steps[0].output
    assert "lower is better" in (run_dir / "report" / "report.md").read_text()
    # the agent's cache remote was filled, outside the workspace
    assert any((pr_build["root"] / "agent" / "dvc-cache").rglob("*"))


def test_every_stage_worked_on_the_job_workspace(pr_build: dict[str, Any]) -> None:
    _every_stage_worked_on_the_job_workspace(pr_build["build"], "pull request #1")


def test_credentials_exist_only_inside_their_blocks(
    pr_build: dict[str, Any], s3: dict[str, Any]
) -> None:
    _credentials_exist_only_inside_their_blocks(
        pr_build["build"], [s3["secret"], REPO_TOKEN, GIT_PUSH.password]
    )


def test_the_build_of_ci_own_commit_is_skipped(
    pr_build: dict[str, Any], s3: dict[str, Any]
) -> None:
    origin, root = pr_build["origin"], pr_build["root"]
    head = _git(origin, "rev-parse", origin.pr_branch)
    again = _pr_build(origin, root, s3, build_number=2)  # triggered by CI's own push
    assert again.result == "SUCCESS", again.log[-3000:]
    assert again.status("Checkout") == "SUCCESS" and again.status("Build") == "SKIPPED"
    assert again.sh_steps("Reproduce") == [] and again.sh_steps("Commit dvc.lock back") == []
    assert _git(origin, "rev-parse", origin.pr_branch) == head  # no new commit: no loop
    assert len(cml_calls(pr_build["record"])) == 1  # and no second comment
