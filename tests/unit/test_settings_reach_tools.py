"""Issue 13: resolved settings (parameters > environment > .env > defaults) reach every SDK
and tool under the tools' own names, secrets included, and are never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.scenarios import load_pipeline
from tests.dvc_cml.support import BUCKET, moto_s3

LIST_BUCKET = (
    "import boto3, os; c = boto3.client('s3', endpoint_url=os.environ['S3_URL']); "
    "print(c.list_objects_v2(Bucket='{bucket}')['ResponseMetadata']['HTTPStatusCode'])"
)


def fresh_session() -> Any:
    """A new boto3 session, as a new stage process has: boto3's default session keeps the
    credentials it resolved first, so settings must be exported before any client exists."""
    import boto3

    return boto3.session.Session()


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    with moto_s3() as server:  # signatures are checked: a wrong secret is refused
        yield server


@pytest.fixture
def clean_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "MLOPS_AWS_", "BOTO")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # no profile from this machine
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def _dotenv(tmp_path: Path, s3: dict[str, Any], secret: str | None = None) -> Path:
    path = tmp_path / ".env"
    path.write_text(
        f"AWS_ACCESS_KEY_ID={s3['key_id']}\n"
        f"AWS_SECRET_ACCESS_KEY={secret or s3['secret']}\n"
        f"MLOPS_AWS_REGION=us-east-1\n"
    )
    return path


@pytest.mark.usefixtures("clean_aws_env")
def test_a_dotenv_credential_reaches_boto3_and_a_subprocess(
    tmp_path: Path, s3: dict[str, Any]
) -> None:
    settings = Settings.load("sagemaker_byo", env_file=_dotenv(tmp_path, s3))
    exported = settings.export_env()
    assert {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    } <= set(exported)
    assert all(s3["secret"] not in name for name in exported)  # names only, never values

    listed = fresh_session().client("s3", endpoint_url=s3["url"]).list_objects_v2(Bucket=BUCKET)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200
    child = subprocess.run(
        [sys.executable, "-c", LIST_BUCKET.format(bucket=BUCKET)],
        env={**os.environ, "S3_URL": s3["url"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0 and child.stdout.strip() == "200", child.stderr
    assert s3["secret"] not in child.stdout + child.stderr
    assert s3["secret"] not in repr(settings) + str(settings.describe())


@pytest.mark.usefixtures("clean_aws_env")
@pytest.mark.parametrize(
    "key_id, secret, refused",
    [
        ("AKIAUNKNOWN000000000", "x" * 40, "InvalidAccessKeyId"),
        (None, "wrong" * 8, "SignatureDoesNotMatch"),
    ],
)
def test_boto3_signs_with_exactly_the_dotenv_key(
    tmp_path: Path, s3: dict[str, Any], key_id: str | None, secret: str, refused: str
) -> None:
    """The check above cannot pass by accident: moto refuses another key or secret."""
    from botocore.exceptions import ClientError

    env_file = tmp_path / "other.env"
    env_file.write_text(
        f"AWS_ACCESS_KEY_ID={key_id or s3['key_id']}\n"
        f"AWS_SECRET_ACCESS_KEY={secret}\nAWS_REGION=us-east-1\n"
    )
    Settings.load("sagemaker_byo", env_file=env_file).export_env()
    assert fresh_session().get_credentials().secret_key == secret
    with pytest.raises(ClientError, match=refused):
        fresh_session().client("s3", endpoint_url=s3["url"]).list_objects_v2(Bucket=BUCKET)


def test_precedence_is_parameter_then_environment_then_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "AWS_REGION=dotenv-1\nOS_AUTH_URL=https://dotenv.invalid\n"
        "REPO_TOKEN=dotenv-token-123\nIBM_API_KEY=dotenv-key-456\n"
    )
    settings = Settings.load(
        "demo",
        params={"aws_region": "param-1"},
        env_file=env_file,
        environ={"AWS_REGION": "env-1", "OS_AUTH_URL": "https://env.invalid", "PATH": "/bin"},
    )
    env = settings.tool_env()
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "param-1"
    assert env["OS_AUTH_URL"] == "https://env.invalid"
    assert env["REPO_TOKEN"] == "dotenv-token-123" and env["IBM_API_KEY"] == "dotenv-key-456"
    assert "PATH" not in env  # only tool settings are exported
    target: dict[str, str] = {}
    assert "REPO_TOKEN" in settings.export_env(target) and target["REPO_TOKEN"] == env["REPO_TOKEN"]


def test_a_stage_context_exports_before_any_backend_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_root: Path
) -> None:
    monkeypatch.delenv("REPO_TOKEN", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("REPO_TOKEN=from-dotenv-only-789\n")
    pipeline = load_pipeline("dvc_cml")
    settings = Settings.load("dvc_cml", env_file=env_file)
    ctx = pipeline.context(settings, log=lambda _line: None)
    assert ctx._backend is None and os.environ["REPO_TOKEN"] == "from-dotenv-only-789"
    shown = subprocess.run(
        ["bash", "-c", 'test "$REPO_TOKEN" = from-dotenv-only-789 && echo ok'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.stdout.strip() == "ok"


def test_the_cli_reads_dotenv_into_the_tools_environment_without_printing_it(
    tmp_path: Path, run_root: Path
) -> None:
    """One stage per process, as Jenkins runs it: the .env of the project root is read."""
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("AWS_SECRET_ACCESS_KEY=dotenv-secret-in-cli-0042\n")
    code = (
        "import os, sys\nfrom mlops_helpers.scenarios import load_pipeline\n"
        "p = load_pipeline('sagemaker_byo')\nctx = p.context(log=print)\n"
        "print('exported' if os.environ.get('AWS_SECRET_ACCESS_KEY') == "
        "'dotenv-secret-in-cli-0042' else 'missing')\nprint(ctx.settings)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_AWS_"))}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "MLOPS_PROJECT_ROOT": str(project)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "exported"
    assert "dotenv-secret-in-cli-0042" not in done.stdout + done.stderr
