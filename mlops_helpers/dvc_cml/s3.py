"""The cloud backend: the shared ``origin`` remote on S3, the report as a PR comment.

Credentials come from settings (``aws_access_key_id`` + ``aws_secret_access_key``, or
``aws_profile``; optional ``aws_region`` and ``s3_endpoint_url`` for S3-compatible stores
such as DagsHub or MinIO). They reach DVC only through the environment of the DVC command
that needs them: never an argv, never ``.dvc/config.local``, so under Jenkins they exist only
inside their ``withCredentials`` block. The report goes out with ``cml comment create``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from mlops_helpers.dvc_cml.base import DvcCmlBackend
from mlops_helpers.dvc_cml.registry import REGISTRY
from mlops_helpers.dvc_cml.shell import environment
from mlops_helpers.errors import ConfigError, MissingExtraError, StageError
from mlops_helpers.extras import is_installed

CREDENTIALS = (
    "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (under Jenkins: "
    "inside the withCredentials block of the stage)"
)


@REGISTRY.register("aws")  # the README's name for the AWS credential set
@REGISTRY.register("s3")
class S3Backend(DvcCmlBackend):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        # dvc[s3]: fails early with the install line. Only looked up, not imported: the dvc
        # processes that reach S3 import it; this one may not need DVC at all
        if not is_installed("dvc_s3"):
            raise MissingExtraError("dvc_s3", "aws")

    def validate(self) -> None:
        keys = [self.settings.aws_access_key_id, self.settings.aws_secret_access_key]
        if not (all(keys) or self.settings.aws_profile):
            raise ConfigError(f"the s3 backend has no AWS credentials: set {CREDENTIALS}")
        endpoint = self.settings.s3_endpoint_url
        if endpoint and not str(endpoint).startswith(("http://", "https://")):
            raise ConfigError(
                f"s3_endpoint_url must start with http:// or https://, got {endpoint!r}"
            )

    def sandbox_origin_url(self) -> str:
        base = str(self.settings.require("dvc_s3_url", why="the S3 URL of the DVC remote"))
        if not base.startswith("s3://"):
            raise ConfigError(f"dvc_s3_url must start with s3://, got {base!r}")
        # one prefix per attendee: many attendees can share one bucket
        return f"{base.rstrip('/')}/{self.settings.name('dvc-cml')}"

    def prepare_sandbox_origin(self) -> None:
        # the bucket is the team's: a run neither creates nor empties it
        return None

    def remote_env(self) -> dict[str, str]:
        self.validate()
        env: dict[str, str] = {}
        key_id, secret = (
            self.settings.aws_access_key_id,
            self.settings.aws_secret_access_key,
        )
        if key_id and secret:
            env["AWS_ACCESS_KEY_ID"] = _plain(key_id)
            env["AWS_SECRET_ACCESS_KEY"] = _plain(secret)
            token = self.settings.aws_session_token
            if token:
                env["AWS_SESSION_TOKEN"] = _plain(token)
        else:
            env["AWS_PROFILE"] = str(self.settings.aws_profile)
        region = self.settings.aws_region
        if region:
            env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = str(region)
        endpoint = self.settings.s3_endpoint_url
        if endpoint:
            env["AWS_ENDPOINT_URL_S3"] = str(endpoint)
        return env

    def check_origin_url(self, url: str) -> None:
        if not url.startswith("s3://"):
            raise ConfigError(
                f"the s3 backend needs an s3:// origin remote, but the "
                f"workspace's origin is {url!r}: use the local backend for it"
            )

    def post_report(self, report: Any, target: str, repo: Path) -> str:
        cml = shutil.which("cml")
        token = self.settings.repo_token
        if cml is None or not token:
            missing = " and ".join(
                n
                for n, ok in (("the cml CLI (npm i -g @dvcorg/cml)", cml), ("REPO_TOKEN", token))
                if not ok
            )
            return f"report written to {report.markdown}; not posted: {missing} missing"
        argv = [cml, "comment", "create", f"--target={target}", "--publish", str(report.markdown)]
        env = {**environment(), "REPO_TOKEN": token.reveal()}
        done = subprocess.run(
            argv,
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
            raise StageError(
                f"cml comment create --target={target} failed ({done.returncode}): {last[-1][:300]}"
            )
        return f"report posted to {target}: {done.stdout.strip() or 'ok'}"

    def describe(self) -> str:
        endpoint = self.settings.s3_endpoint_url
        where = f" at {endpoint}" if endpoint else ""
        return (
            f"s3 backend: the shared DVC remote is on S3{where} (storage and requests "
            f"are billed by the bucket owner); the CI cache remote is a local folder"
        )


def _plain(value: Any) -> str:
    return value.reveal() if hasattr(value, "reveal") else str(value)
