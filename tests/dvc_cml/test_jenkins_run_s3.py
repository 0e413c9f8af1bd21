"""The dvc_cml Jenkinsfile run the way Jenkins runs it, with the shared DVC remote on S3 (moto
on loopback) and the report posted through ``cml comment create``: see ``test_jenkins_run.py``
for the build on the local backend and the helpers both use.
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
    _git,
    _no_secret_on_disk,
    _origin,
    _passed,
)
from tests.jenkins_shaped import UsernamePassword, run_jenkinsfile

pytestmark = pytest.mark.jenkins


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    with moto_s3() as server:
        yield server


def test_pr_build_on_the_s3_remote(s3: dict[str, Any], tmp_path: Path) -> None:
    origin = _origin(tmp_path / "sandbox", **s3_params(s3))
    before = _git(origin, "rev-parse", origin.pr_branch)
    keys_before = bucket_keys(s3)
    record = tmp_path / "cml-calls.tsv"
    install_recording_cml(tmp_path / "bin", record)
    path = os.pathsep.join([str(Path(sys.executable).parent), str(tmp_path / "bin"),
                            os.environ.get("PATH", "/usr/bin:/bin")])
    build = run_jenkinsfile(
        origin, tmp_path / "workspace", change_id=1,
        params={"BACKEND": "s3", "AWS_REGION": "us-east-1", "S3_ENDPOINT_URL": s3["url"],
                "CI_CACHE": str(tmp_path / "agent" / "dvc-cache")},
        credentials={"git-push": GIT_PUSH,
                     "dvc-s3-remote": UsernamePassword(s3["key_id"], s3["secret"]),
                     "cml-repo-token": REPO_TOKEN},
        agent_env={"PATH": path})
    _passed(build)
    _assert_pr_branch_holds_the_lock_commit(origin, before)
    assert len(bucket_keys(s3)) == len(keys_before) + 1  # the pull request's model
    [call] = cml_calls(record)
    assert call["target"] == "pr/1" and Path(call["cwd"]) == build.workspace
    assert "report posted to pr/1" in build.stage("Report").steps[0].output
    _no_secret_on_disk(build.workspace, [s3["secret"], REPO_TOKEN, GIT_PUSH.password])
    assert s3["secret"] not in build.log
