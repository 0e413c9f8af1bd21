"""The cloud backend: the shared ``origin`` remote on S3, the report as a PR comment.

Credentials come from settings (``aws_access_key_id``, ``aws_secret_access_key``, optional
``aws_region`` and ``s3_endpoint_url`` for S3-compatible stores such as DagsHub or MinIO)
and reach DVC only through ``dvc remote modify --local``: never committed, removed by the
cleanup stage. The report goes out with ``cml comment create`` when CML and a repo token
are present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from mlops_helpers.dvc_cml.base import DvcCmlBackend
from mlops_helpers.dvc_cml.registry import REGISTRY
from mlops_helpers.dvc_cml.shell import CommandFailed, Shell, environment
from mlops_helpers.errors import ConfigError, StageError
from mlops_helpers.extras import require


@REGISTRY.register("s3")
class S3Backend(DvcCmlBackend):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        require("dvc_s3", "aws")  # dvc[s3]: fails early with the install line

    def origin_url(self) -> str:
        base = str(self.settings.require("dvc_s3_url", why="the S3 URL of the DVC remote"))
        if not base.startswith("s3://"):
            raise ConfigError(f"dvc_s3_url must start with s3://, got {base!r}")
        # one prefix per attendee: many attendees can share one bucket
        return f"{base.rstrip('/')}/{self.settings.name('dvc-cml')}"

    def reset_origin(self) -> None:
        # objects are content-addressed: old ones do no harm, and deleting in a shared
        # bucket is not a thing a workshop run should do
        return None

    def write_credentials(self, shell: Shell, remote: str) -> list[str]:
        key_id = self.settings.require("aws_access_key_id", why="S3 remote credentials")
        secret = self.settings.secret("aws_secret_access_key")
        if not secret:
            raise ConfigError("setting 'aws_secret_access_key' is not set (S3 remote "
                              "credentials): set AWS_SECRET_ACCESS_KEY in the environment "
                              "or in .env")
        options = {"access_key_id": key_id.reveal() if hasattr(key_id, "reveal") else key_id,
                   "secret_access_key": secret.reveal()}
        region = self.settings.get("aws_region")
        endpoint = self.settings.get("s3_endpoint_url")
        if region:
            options["region"] = str(region)
        if endpoint:
            options["endpointurl"] = str(endpoint)
        for name, value in options.items():
            try:
                shell.dvc("remote", "modify", "--local", remote, name, str(value))
            except CommandFailed as exc:  # its argv holds the value: never show that
                raise StageError(f"dvc remote modify --local {remote} {name} failed with "
                                 f"exit code {exc.code}; is '{remote}' configured?") from None
        return sorted(options)

    def post_report(self, report: Any) -> str:
        cml = shutil.which("cml")
        token = self.settings.secret("repo_token")
        if cml is None or not token:
            missing = " and ".join(
                n for n, ok in (("the cml CLI (npm i -g @dvcorg/cml)", cml), ("REPO_TOKEN",
                                token)) if not ok)
            return f"report written to {report.markdown}; not posted: {missing} missing"
        # --target: the pull request of the current branch, or the one named in settings
        target = self.settings.get("cml_pr_url") or "pr"
        argv = [cml, "comment", "create", f"--target={target}", "--publish",
                str(report.markdown)]
        env = {**environment(), "REPO_TOKEN": token.reveal()}
        done = subprocess.run(argv, cwd=self.layout.repo, env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise StageError(f"cml comment create failed ({done.returncode}): "
                             f"{(done.stdout + done.stderr).strip()[-800:]}")
        return f"report posted as a pull-request comment: {done.stdout.strip() or 'ok'}"

    def describe(self) -> str:
        endpoint = self.settings.get("s3_endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
        where = f" at {endpoint}" if endpoint else ""
        return (f"S3 backend: DVC remote origin = {self.origin_url()}{where} (S3 storage and "
                f"requests are billed by the bucket owner); CI cache remote stays local")
