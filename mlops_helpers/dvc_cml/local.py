"""The local backend: the shared DVC remote is a folder, the report stays a file.

Nothing is mocked: real git, real ``dvc repro/push/pull/status``; the only difference to
CI in the cloud is where the remote's bytes live and that the report is not posted.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlops_helpers.dvc_cml.base import DvcCmlBackend
from mlops_helpers.dvc_cml.registry import REGISTRY
from mlops_helpers.errors import ConfigError


@REGISTRY.register("local")
class LocalBackend(DvcCmlBackend):
    def validate(self) -> None:
        return None  # a folder remote needs no setting and no secret

    def sandbox_origin_url(self) -> str:
        return str(self.layout.origin_remote)

    def prepare_sandbox_origin(self) -> None:
        # a new sandbox is a new project: an earlier run's outputs in its folder remote
        # would let the notebook's "not everything is pushed" gate pass on a second run
        shutil.rmtree(self.layout.origin_remote, ignore_errors=True)
        self.layout.origin_remote.mkdir(parents=True)

    def remote_env(self) -> dict[str, str]:
        return {}

    def check_origin_url(self, url: str) -> None:
        if "://" in url:
            raise ConfigError(
                f"the local backend serves folder remotes only, but origin is "
                f"{url!r}: use the backend that matches it (s3 for s3://)"
            )

    def post_report(self, report: Any, target: str, repo: Path) -> str:
        return (
            f"report written to {report.markdown} (the local backend does not post "
            f"to a pull request)"
        )

    def describe(self) -> str:
        return "local backend: DVC remotes are folders on this machine"
