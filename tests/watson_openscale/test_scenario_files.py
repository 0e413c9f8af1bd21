"""Jenkinsfiles (stage sync, lint, no literal secrets), detect-secrets, the model project."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_helpers import paths
from mlops_helpers.watson_openscale.model_source import load_model_module, project_dir
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.jenkins_runner import assert_stages_match

SCENARIO_DIR = project_dir()
HELPERS_DIR = paths.PACKAGE_DIR / "watson_openscale"
JENKINSFILE = SCENARIO_DIR / "Jenkinsfile"
CPDCTL = SCENARIO_DIR / "Jenkinsfile.cpdctl"


def test_jenkinsfile_calls_the_cli_stages_in_order() -> None:
    assert_stages_match("watson_openscale", JENKINSFILE, PIPELINE.stage_names())


def test_jenkinsfile_sh_steps_call_the_cli_and_cleanup_always_runs() -> None:
    text = JENKINSFILE.read_text()
    steps = re.findall(r"\bsh\s+'([^']+)'", text)
    assert [s for s in steps if not s.startswith("python -m pytest")] == [
        f"mlops-workshop watson_openscale {name}" for name in PIPELINE.stage_names()
    ]
    always = text[text.index("post {") :]
    assert "mlops-workshop watson_openscale cleanup" in always
    assert "credentialsId: 'ibm-cloud-api-key'" in text


@pytest.mark.parametrize("path", [JENKINSFILE, CPDCTL], ids=lambda p: p.name)
def test_no_literal_url_password_or_sleep(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"https?://", text), "a literal URL"
    assert not re.search(r"--password|password\s*[=:]", text, re.IGNORECASE)
    assert not re.search(r"\bsleep\s*\(", text), "fixed sleeps instead of bounded waits"
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text), (
        "a hard-coded id (the write-up's service_provider_id)"
    )


def test_cpdctl_variant_takes_url_and_key_from_jenkins_credentials() -> None:
    text = CPDCTL.read_text()
    assert re.search(r"withCredentials\(\[string\(credentialsId: 'ibm-cloud-url'", text)
    assert "string(credentialsId: 'ibm-cloud-api-key', variable: 'IBM_API_KEY')" in text
    # secrets expand in the shell (single-quoted Groovy), never by Groovy interpolation
    assert '"$IBM_API_KEY"' in text and "${IBM_API_KEY}" not in text
    assert "waitUntil" in text and "timeout(time:" in text
    assert "service-providers list" in text and "quality gate: accuracy" in text
    for stage in (
        "Setup",
        "Deployment space",
        "Store or update model",
        "Create or update deployment",
        "Create or update monitor subscription",
        "Score",
        "Log feedback",
        "Evaluate quality",
        "Promote to production",
    ):
        assert f"stage('{stage}')" in text, stage
    stages = re.findall(r"stage\('([^']+)'\)", text)
    assert stages.index("Promote to production") == stages.index("Evaluate quality") + 1
    # the payload log is checked after scoring (WML writes it), with a bounded wait
    score = text[text.index("stage('Score')") : text.index("stage('Log feedback')")]
    assert "--type payload_logging" in score and "waitUntil" in score
    # cleanup: everything the build made, the space only when this build created it
    always = text[text.index("post {") :]
    for deleted in (
        "wos subscriptions delete",
        "ml deployment delete",
        "ml model delete",
        "space delete",
    ):
        assert deleted in always, deleted
    assert 'SPACE_CREATED" = "true"' in always
    # the runtime matches the training scikit-learn, or Setup refuses naming both
    assert "'runtime-24.1-py3.11'" not in text and "sklearn.__version__" in text


def detect_secrets(folder: Path) -> dict[str, list[object]]:
    """``detect-secrets scan`` of every file under ``folder`` (tracked or not), no caches."""
    exe = Path(sys.executable).with_name("detect-secrets")
    done = subprocess.run(
        [
            str(exe),
            "scan",
            "--all-files",
            "--exclude-files",
            r"(__pycache__|\.pytest_cache|\.ruff_cache)/",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=folder,
    )
    results: dict[str, list[object]] = json.loads(done.stdout)["results"]
    return results


def test_detect_secrets_finds_nothing() -> None:
    assert detect_secrets(SCENARIO_DIR) == {}
    assert detect_secrets(HELPERS_DIR) == {}


def test_detect_secrets_would_find_a_planted_key(tmp_path: Path) -> None:
    # built at run time, so this file itself holds no key-shaped literal
    (tmp_path / "settings.py").write_text(f'aws_key = "{"AKIA" + "Q7" * 8}"\n')
    assert list(detect_secrets(tmp_path)) == ["settings.py"]


def test_model_module_offers_what_the_pipeline_calls(tmp_path: Path) -> None:
    module = load_model_module()
    assert module.load_config()["label_column"] == "digit"
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.py").write_text("def train():\n    pass\n")
    from mlops_helpers.errors import StageError

    with pytest.raises(StageError, match="does not define"):
        load_model_module(tmp_path)


def test_dockerfile_builds_from_the_checkout() -> None:
    """No package index for the project: the image installs this checkout; both Jenkinsfiles
    build it with the repository root as context, where the COPY sources are."""
    dockerfile = (SCENARIO_DIR / "Dockerfile").read_text()
    assert "mlops-workshop[" not in dockerfile
    # every dependency from the image's own hash-checked lock (with IBM's scikit-learn), then
    # the package itself from the checkout (tests/setup/test_agent_images.py checks the rest)
    assert "--require-hashes -r requirements/watson-image.lock.txt" in dockerfile
    assert re.search(r"pip install [^\n]*--no-deps \.$", dockerfile, re.MULTILINE)
    lock = (paths.project_root() / "requirements/watson-image.lock.txt").read_text()
    assert "\nscikit-learn==1.6.1 " in lock
    root = paths.project_root()
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE):
        assert (root / source).exists(), f"COPY {source}: not in the repository root"
    for jenkinsfile in (JENKINSFILE, CPDCTL):
        assert "filename 'scenarios/watson_openscale/Dockerfile'" in jenkinsfile.read_text()
    assert "scikit-learn" in (SCENARIO_DIR / "requirements.txt").read_text()


def test_jenkinsfile_promotes_only_after_the_gate() -> None:
    names = PIPELINE.stage_names()
    assert names.index("promote") == names.index("evaluate") + 1
    text = JENKINSFILE.read_text()
    assert text.index("watson_openscale evaluate") < text.index("watson_openscale promote")
