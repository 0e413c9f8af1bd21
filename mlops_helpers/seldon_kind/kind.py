"""KIND backend: the integration test in a throwaway kind cluster with the Seldon operator.

``scenarios/seldon_kind/integration/kind_test_all.sh`` does the cluster work (docker, kind,
helm, kubectl) and always deletes the cluster. Without docker, kind, helm or kubectl the
backend refuses at once and says which are missing, as ``mlops-workshop doctor`` does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mlops_helpers.errors import BackendUnavailable, StageError
from mlops_helpers.seldon_kind.base import SeldonBackend, integration_dir
from mlops_helpers.seldon_kind.cluster import (
    ClusterEnvironment,
    KindCluster,
    model_store_volume,
    operator_env,
    write_image_lists,
)
from mlops_helpers.seldon_kind.local import TEST_ENVIRONMENT
from mlops_helpers.seldon_kind.modelwork import child_env
from mlops_helpers.seldon_kind.reconcile import Environment
from mlops_helpers.seldon_kind.registry import REGISTRY
from mlops_helpers.seldon_kind.spec import SCENARIO
from mlops_helpers.servers import free_port

# as the spec declares, and the docker client its engine check runs
TOOLS = ("docker", *(t.name for t in SCENARIO.backend("kind").tools))
SCRIPT = "kind_test_all.sh"


def missing_prerequisites() -> list[str]:
    """What this machine lacks for a kind cluster (empty: it can run one)."""
    missing = [f"{tool} (not on PATH)" for tool in TOOLS if shutil.which(tool) is None]
    if "docker (not on PATH)" not in missing:
        try:
            done = subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            answered = done.returncode == 0 and bool(done.stdout.strip())
        except subprocess.TimeoutExpired:
            answered = False
        if not answered:
            missing.append("a docker engine (the client is here, no daemon answers)")
    return missing


@REGISTRY.register("kind")
class KindBackend(SeldonBackend):
    name = "kind"

    def __init__(self, ctx: Any) -> None:
        missing = missing_prerequisites()
        if missing:
            raise BackendUnavailable(
                "the kind backend needs " + ", ".join(missing) + "; the local backend runs "
                "the same servers without them (backend='local'). `mlops-workshop doctor` "
                "lists what this machine has."
            )
        super().__init__(ctx)

    def environment(self, name: str) -> Environment:
        """serve_local's test servers stay local; staging and production are namespaces of
        the run's kind cluster, reconciled with ``kubectl apply --prune``."""
        if name == TEST_ENVIRONMENT:
            return super().environment(name)
        return ClusterEnvironment(
            self.ctx,
            name,
            KindCluster(self.ctx, self.python),
            self.settings.rollout_timeout,
        )

    def integration_test(
        self, manifests: dict[str, str], targets: list[dict[str, Any]]
    ) -> dict[str, Any]:
        work = self.ctx.run_dir / "integration" / "kind"
        shutil.rmtree(work, ignore_errors=True)
        (work / "manifests").mkdir(parents=True)
        namespace, claim = "", self.settings.name("seldon-models")
        for name, text in manifests.items():
            (work / "manifests" / name).write_text(text)
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict) and doc.get("kind") == "Namespace":
                    namespace = doc["metadata"]["name"]
        volume = model_store_volume(claim, namespace)
        (work / "manifests" / "01-model-store.yaml").write_text(yaml.safe_dump_all(volume))
        write_image_lists(self.ctx.run_dir, work)
        forwards = []
        for target in targets:
            port = free_port()
            target["endpoint"] = f"127.0.0.1:{port}"
            forwards.append(f"{namespace} {target['name']}-default-classifier {port} 9000\n")
        (work / "port-forwards.txt").write_text("".join(forwards))
        (work / "targets.json").write_text(json.dumps({"targets": targets}, indent=2))
        env = child_env(
            CLUSTER_NAME=self.settings.name("seldon-e2e"),
            WORK_DIR=str(work),
            MODEL_STORE=str(self.ctx.run_dir / "model-store"),
            SELDON_PYTHON=str(self.python),
            **operator_env(self.settings),
        )
        log = work / "kind_test_all.log"
        timeout = self.settings.kind_timeout
        with open(log, "wb") as err:
            try:
                done = subprocess.run(
                    ["bash", str(integration_dir() / SCRIPT)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise StageError(f"the kind test took more than {timeout:g}s; see {log}") from exc
        lines = done.stdout.decode(errors="replace").strip().splitlines()
        try:
            return dict(json.loads(lines[-1]))
        except (ValueError, IndexError):
            tail = "\n".join(Path(log).read_text(errors="replace").splitlines()[-20:])
            raise StageError(
                f"the kind test failed (exit {done.returncode}) before the "
                f"end-to-end check; {log}:\n{tail}"
            ) from None
