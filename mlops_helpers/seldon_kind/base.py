"""What every backend of this scenario does; the stages only talk to this interface.

On the local backend every environment (test, staging, production) is a set of local Seldon
processes kept in line with the GitOps repo by the reconciler, and the integration test runs
against the local test servers. On ``kind`` the integration test runs inside a throwaway
cluster with the Seldon Core operator, as the write-up's CI does, and staging and production
are namespaces of the run's kind cluster, reconciled with ``kubectl apply --prune``
(``cluster.py``).
"""

from __future__ import annotations

import json
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mlops_helpers import paths
from mlops_helpers.errors import StageError
from mlops_helpers.launcher_client import WarmLauncher
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.modelwork import child_env
from mlops_helpers.seldon_kind.reconcile import Environment
from mlops_helpers.seldon_kind.runtime import ensure_seldon_runtime

E2E_TIMEOUT_S = 300


def integration_dir() -> Path:
    return paths.scenarios_dir() / "seldon_kind" / "integration"


class SeldonBackend(ABC):
    name: str = ""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._python: Path | None = None

    @property
    def python(self) -> Path:
        """The Seldon environment's python (created on first use, then reused)."""
        if self._python is None:
            self._python = ensure_seldon_runtime()
        return self._python

    def environment(self, name: str) -> Environment:
        return Environment(self.ctx, name, self.python)

    def run_e2e(
        self, targets: list[dict[str, Any]], launcher: WarmLauncher | None = None
    ) -> dict[str, Any]:
        """SeldonClient against ``targets`` (host:port endpoints), from the Seldon env:
        started by the warm ``launcher`` (it has imported seldon-core), or else as a new
        process."""
        folder = self.ctx.run_dir / "integration"
        folder.mkdir(parents=True, exist_ok=True)
        targets_file = folder / "targets.json"
        targets_file.write_text(json.dumps({"targets": targets}, indent=2))
        script = integration_dir() / "e2e_seldon_client.py"
        if launcher:
            args = ["python", str(script), str(targets_file)]
            request = {"args": args, "cwd": str(script.parent), "env": {}}
            output = launcher.run("seldon-e2e", request, E2E_TIMEOUT_S)
        else:
            try:
                done = subprocess.run(
                    [str(self.python), str(script), str(targets_file)],
                    capture_output=True,
                    text=True,
                    timeout=E2E_TIMEOUT_S,
                    env=child_env(),
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise StageError(f"the end-to-end test took more than {E2E_TIMEOUT_S}s") from exc
            output = done.stdout + done.stderr
        for line in reversed(output.strip().splitlines()):
            try:
                report = json.loads(line)
            except ValueError:
                continue  # a warning printed after the report
            if isinstance(report, dict) and "passed" in report:
                return report
        raise StageError(f"the end-to-end test crashed:\n{output[-1500:]}")

    @abstractmethod
    def integration_test(
        self, manifests: dict[str, str], targets: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Deploy ``manifests`` where this backend tests, run the end-to-end test.

        ``targets`` carry each deployment's name, sample payload and bad payloads; the
        local backend adds the endpoints of the servers ``serve_local`` started.
        """
