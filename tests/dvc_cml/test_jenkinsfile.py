"""The Jenkinsfile calls the CLI's stages in order, keeps credentials in their blocks and
passes npm-groovy-lint. ``test_jenkins_run.py`` executes it the way Jenkins does."""

from __future__ import annotations

import re

from mlops_helpers.dvc_cml.layout import template_dir
from mlops_helpers.dvc_cml.stages import PIPELINE
from tests.support import assert_stages_match

JENKINSFILE = template_dir() / "Jenkinsfile"


def test_stage_list_matches_cli() -> None:
    assert_stages_match("dvc_cml", JENKINSFILE, PIPELINE.stage_names())


def test_every_sh_step_calls_the_cli() -> None:
    text = JENKINSFILE.read_text()
    steps = re.findall(r"\bsh\s+['\"]([^'\"]+)['\"]", text)
    assert steps
    assert all(step.startswith("mlops-workshop dvc_cml ") for step in steps), steps
    # the one other shell call: the head commit's message, for the [skip ci] check
    assert re.findall(r"\bsh\(script: '([^']+)'", text) == ["git log -1 --format=%B"]


def _credential_blocks(text: str) -> dict[str, list[str]]:
    """credentialsId -> the CLI stages called inside its withCredentials blocks."""
    found: dict[str, list[str]] = {}
    for match in re.finditer(
        r"withCredentials\(\[\w+\(credentialsId: '([^']+)'.*?\{(.*?)\}", text, re.S
    ):
        found.setdefault(match[1], []).extend(re.findall(r"mlops-workshop dvc_cml (\w+)", match[2]))
    return found


def test_credentials_only_where_a_stage_needs_them() -> None:
    text = JENKINSFILE.read_text()
    assert _credential_blocks(text) == {
        "git-push": ["checkout", "commit_lock"],
        "dvc-s3-remote": ["remote_credentials", "sync_remotes", "push", "pushed_check"],
        "cml-repo-token": ["report"],
    }
    environment = text[text.index("environment {") : text.index("stages {")]
    assert "credentials(" not in environment and "AWS_SECRET" not in environment


def test_pull_request_stages_only_on_change_requests() -> None:
    text = JENKINSFILE.read_text()
    pr_block = text[text.index("stage('Pull request')") :]
    assert "changeRequest()" in pr_block
    for stage in ("reproduce", "lock_check", "push", "compare", "report", "commit_lock"):
        assert f"mlops-workshop dvc_cml {stage}'" in pr_block, stage
    assert "withCredentials" in text and "dockerfile" in text


def test_agent_dockerfile_installs_the_tools() -> None:
    dockerfile = (template_dir() / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "mlops-workshop" in dockerfile
