"""The scenario's files checked by their ecosystems' own validators."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlops_helpers.paths import project_root
from mlops_helpers.sagemaker_byo.stages import PIPELINE
from tests.jenkins_runner import assert_stages_match

ROOT = project_root()
JENKINSFILE = ROOT / "scenarios" / "sagemaker_byo" / "Jenkinsfile"
TEMPLATES = sorted((ROOT / "cloudformation").glob("*.yaml"))


def test_jenkinsfile_runs_the_pipeline_stages_in_order() -> None:
    assert_stages_match("sagemaker_byo", JENKINSFILE, PIPELINE.stage_names())
    text = JENKINSFILE.read_text()
    post = text[text.index("post {") :]
    assert "always" in post and "mlops-workshop sagemaker_byo cleanup" in post


def test_there_are_templates() -> None:
    assert {p.name for p in TEMPLATES} >= {"workshop-setup.yaml", "lambdas-sam.yaml"}


def test_cloudformation_passes_cfn_lint() -> None:
    exe = Path(sys.executable).with_name("cfn-lint")
    # one linter start for every template (its output names the file of each finding)
    done = subprocess.run(
        [str(exe), *map(str, TEMPLATES)], capture_output=True, text=True, timeout=300, check=False
    )
    # exit code bits: 2 = errors, 4 = warnings, 8 = informational; errors fail the test
    assert done.returncode & 2 == 0 and done.returncode & 1 == 0, done.stdout + done.stderr


def test_lambdas_use_a_supported_runtime_and_exist() -> None:
    sam = (ROOT / "cloudformation" / "lambdas-sam.yaml").read_text()
    assert "Runtime: python3.12" in sam
    for name in ("check_training_status", "invoke_endpoint"):
        assert f"../lambdas/{name}/" in sam
        assert (ROOT / "lambdas" / name / "app.py").is_file()


def test_setup_template_has_the_safety_settings() -> None:
    setup = (ROOT / "cloudformation" / "workshop-setup.yaml").read_text()
    for needed in (
        "ScanOnPush: true",
        "Status: Enabled",
        "SSEAlgorithm",
        "RestrictPublicBuckets: true",
        "sagemaker.amazonaws.com",
    ):
        assert needed in setup
    assert "AmazonS3FullAccess" not in setup  # the role is scoped to the artifact bucket
