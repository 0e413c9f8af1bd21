"""The Jenkinsfile calls the CLI's stages in order, keeps credentials in their blocks and
passes npm-groovy-lint. ``test_jenkins_run.py`` executes it the way Jenkins does."""

from __future__ import annotations

import re

from mlops_helpers.dvc_cml.layout import template_dir
from mlops_helpers.dvc_cml.stages import PIPELINE
from tests.jenkins_runner import (
    Binary,
    Call,
    Literal,
    Name,
    Prop,
    Str,
    Ternary,
    agent_images,
    assert_stages_match,
    parse,
    project_tree,
    walk,
)

JENKINSFILE = template_dir() / "Jenkinsfile"


def test_stage_list_matches_cli() -> None:
    assert_stages_match("dvc_cml", JENKINSFILE, PIPELINE.stage_names())


def test_every_sh_step_calls_the_cli() -> None:
    text = JENKINSFILE.read_text()
    steps = re.findall(r"\bsh\s+['\"]([^'\"]+)['\"]", text)
    assert steps
    assert all(step.startswith("mlops-workshop dvc_cml ") for step in steps), steps
    # the one other shell call: checkout, whose result says whether CI's own push started it
    assert re.findall(r"\bsh\(script: '([^']+)'", text) == ["mlops-workshop dvc_cml checkout"]


def _backend_condition(node: object) -> str | None:
    """``params.BACKEND == 'x' ? [...] : []`` -> 'x'; an unconditional binding list -> None."""
    if not isinstance(node, Ternary):
        return None
    cond = node.cond
    assert isinstance(cond, Binary) and cond.op == "==", cond
    assert isinstance(cond.left, Prop) and cond.left.name == "BACKEND", cond
    assert isinstance(cond.left.target, Name) and cond.left.target.name == "params", cond
    assert isinstance(cond.right, Str), cond
    return cond.right.plain()


def _credential_blocks(text: str) -> dict[tuple[str, str | None], list[str]]:
    """(credentialsId, the only backend that binds it or None) -> the CLI stages called
    inside its withCredentials blocks."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for block in walk(parse(text)):
        if not (isinstance(block, Call) and block.name == "withCredentials"):
            continue
        backend = _backend_condition(block.args[0])
        ids = [
            binding.named["credentialsId"]
            for binding in walk(block.args[0])
            if isinstance(binding, Call) and "credentialsId" in binding.named
        ]
        assert block.closure is not None
        stages = [
            match
            for node in walk(block.closure)
            if isinstance(node, Str) and node.plain()
            for match in re.findall(r"^mlops-workshop dvc_cml (\w+)$", node.plain() or "")
        ]
        for cred in ids:
            assert isinstance(cred, (Str, Literal))
            key = (cred.plain() if isinstance(cred, Str) else str(cred.value)) or ""
            found.setdefault((key, backend), []).extend(stages)
    return found


def test_credentials_only_where_a_stage_needs_them() -> None:
    """git-push on every backend; the S3 keys and CML's token only on the s3 backend (a
    fresh Jenkins running the local backend has neither, and needs neither)."""
    text = JENKINSFILE.read_text()
    assert _credential_blocks(text) == {
        ("git-push", None): ["checkout", "commit_lock"],
        ("dvc-s3-remote", "s3"): ["remote_credentials", "sync_remotes", "push", "pushed_check"],
        ("cml-repo-token", "s3"): ["report"],
    }
    environment = text[text.index("environment {") : text.index("stages {")]
    assert "credentials(" not in environment and "AWS_SECRET" not in environment


def test_pull_request_stages_only_on_change_requests() -> None:
    text = JENKINSFILE.read_text()
    pr_block = text[text.index("stage('Pull request')") :]
    assert "changeRequest()" in pr_block
    for stage in ("reproduce", "lock_check", "push", "compare", "report", "commit_lock"):
        assert f"mlops-workshop dvc_cml {stage}'" in pr_block, stage
    assert "withCredentials" in text and "image 'mlops-workshop-dvc-cml:latest'" in text


def test_agent_image_is_built_from_this_dockerfile_and_the_lock() -> None:
    """The Jenkinsfile's agent image: `make agent-images` of the workshop builds it from this
    Dockerfile (tests/setup/test_agent_images.py checks where each install comes from)."""
    image = agent_images(project_tree())["mlops-workshop-dvc-cml:latest"]
    assert image.dockerfile == "scenarios/dvc_cml/Dockerfile"
    dockerfile = (template_dir() / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/project.lock.txt" in dockerfile
    assert "@dvcorg/cml@" in dockerfile and "mlops-workshop[" not in dockerfile
