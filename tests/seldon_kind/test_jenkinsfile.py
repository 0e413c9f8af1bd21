"""The Jenkinsfile runs the CLI's stages in order on a pod that can run KIND, and lints."""

from __future__ import annotations

import re

from mlops_helpers.paths import scenarios_dir
from mlops_helpers.seldon_kind.stages import PIPELINE
from tests.jenkins_runner import assert_stages_match

JENKINSFILE = scenarios_dir() / "seldon_kind" / "Jenkinsfile"


def test_stage_list_matches_cli() -> None:
    assert_stages_match("seldon_kind", JENKINSFILE, PIPELINE.stage_names())


def test_every_sh_step_calls_the_cli_and_cleanup_always_runs() -> None:
    text = JENKINSFILE.read_text()
    steps = re.findall(r"\bsh\s+['\"]([^'\"]+)['\"]", text)
    assert steps and all(s.startswith("mlops-workshop seldon_kind ") for s in steps), steps
    posts = text.split("post {")[1:]
    assert len(posts) == 2  # each pod's stage cleans up after itself
    assert all("always" in post and "mlops-workshop seldon_kind cleanup" in post for post in posts)


def test_the_pod_can_run_docker_for_kind() -> None:
    text = JENKINSFILE.read_text()
    pod = (JENKINSFILE.parent / "ci-pod.yaml").read_text()
    assert "yamlFile 'scenarios/seldon_kind/ci-pod.yaml'" in text and "privileged: true" in pod
    for mount in ("/sys/fs/cgroup", "/lib/modules", "/var/lib/docker"):
        assert mount in pod, mount
    assert "image: mlops-workshop-ci:latest" in pod
    assert "submitter: 'release-managers'" in text and "submitterParameter: 'APPROVER'" in text
    assert "MLOPS_APPROVER" in text
