"""The local backend: both DVC remotes are directories, origin is a bare git repo.

Nothing is mocked: real git, real ``dvc repro/push/pull/status``; the only difference to
CI in the cloud is where the remote's bytes live and that the report stays a file.
"""

from __future__ import annotations

import shutil
from typing import Any

from mlops_helpers.dvc_cml.base import DvcCmlBackend
from mlops_helpers.dvc_cml.registry import REGISTRY
from mlops_helpers.dvc_cml.shell import Shell


@REGISTRY.register("local")
class LocalBackend(DvcCmlBackend):
    def origin_url(self) -> str:
        return str(self.layout.origin_remote)

    def reset_origin(self) -> None:
        shutil.rmtree(self.layout.origin_remote, ignore_errors=True)
        self.layout.origin_remote.mkdir(parents=True)

    def write_credentials(self, shell: Shell, remote: str) -> list[str]:
        # a directory remote needs no secret; a missing directory means a missing remote
        return []

    def post_report(self, report: Any) -> str:
        return (f"report written to {report.markdown} (the local backend has no pull "
                f"request to comment on)")
