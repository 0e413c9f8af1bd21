"""The Jenkinsfile calls the CLI's stages in order and passes npm-groovy-lint."""

from __future__ import annotations

import re

from mlops_helpers.dvc_cml.layout import template_dir
from mlops_helpers.dvc_cml.stages import PIPELINE
from tests.support import assert_stages_match, groovy_lint

JENKINSFILE = template_dir() / "Jenkinsfile"


def test_stage_list_matches_cli() -> None:
    assert_stages_match("dvc_cml", JENKINSFILE, PIPELINE.stage_names())


def test_every_sh_step_calls_the_cli() -> None:
    steps = re.findall(r"\bsh\s+['\"]([^'\"]+)['\"]", JENKINSFILE.read_text())
    assert steps
    assert all(step.startswith("mlops-workshop dvc_cml ") for step in steps), steps


def test_pull_request_stages_only_on_change_requests() -> None:
    text = JENKINSFILE.read_text()
    pr_block = text[text.index("stage('Pull request')"):]
    assert "changeRequest()" in pr_block
    for stage in ("reproduce", "lock_check", "push", "compare", "report", "commit_lock"):
        assert f"mlops-workshop dvc_cml {stage}'" in pr_block, stage
    assert "withCredentials" in text and "dockerfile" in text


def test_groovy_lint() -> None:
    groovy_lint(JENKINSFILE)


def test_agent_dockerfile_installs_the_tools() -> None:
    dockerfile = (template_dir() / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "mlops-workshop" in dockerfile
