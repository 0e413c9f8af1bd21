"""Staging and production on the kind backend: namespaces of one kind cluster, each kept in
line with its GitOps folder by ``kubectl apply --prune``.

Reconciling an environment applies the folder to its namespace (objects of this environment
that the folder no longer holds are pruned, by label), waits, bounded, until every
SeldonDeployment reports ``Available``, and keeps a ``kubectl port-forward`` on 127.0.0.1 per
deployment, through which the smoke test and the notebook reach the cluster. The record has
the same shape as the local backend's (``reconcile.Environment``), so the stages do not care
where an environment runs.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mlops_helpers.config import Settings
from mlops_helpers.errors import StageError, WaitTimeout
from mlops_helpers.pipeline import StageContext
from mlops_helpers.resources import teardown_handler
from mlops_helpers.seldon_kind.base import integration_dir
from mlops_helpers.seldon_kind.catalog import CUSTOM_SERVERS
from mlops_helpers.seldon_kind.modelwork import child_env
from mlops_helpers.seldon_kind.reconcile import Environment, ReconcileFailed, parse, spec_hash
from mlops_helpers.seldon_kind.serving import ImageIndex, resolve
from mlops_helpers.servers import ManagedServer, start_server
from mlops_helpers.waiting import wait_until

PART_OF = "app.kubernetes.io/part-of=mlops-workshop"
ENVIRONMENT_LABEL = "mlops-workshop/environment"
#: what ``--prune`` may delete: only our own kinds, never the namespace or the volume
PRUNABLE = ("machinelearning.seldon.io/v1/SeldonDeployment", "core/v1/PersistentVolumeClaim")
MODEL_PORT = 9000  # the model container's REST port behind <deployment>-default-classifier
KUBECTL_TIMEOUT_S = 300
UP_TIMEOUT_S = 1800


def write_image_lists(run_dir: Path, work: Path) -> None:
    """``images.txt`` (what to build and load) and ``servers.txt`` (our reusable servers,
    registered with the operator like its prepackaged ones) for the kind scripts."""
    index = ImageIndex(run_dir / "images").load()
    work.mkdir(parents=True, exist_ok=True)
    (work / "images.txt").write_text(
        "".join(f"{ref} {folder}\n" for ref, folder in index["images"].items())
    )
    servers = [
        f"{impl} {ref.rsplit(':', 1)[0]} {ref.rsplit(':', 1)[1]}\n"
        for impl, ref in index["prepackaged"].items()
        if impl in CUSTOM_SERVERS
    ]
    (work / "servers.txt").write_text("".join(servers))


def model_store_volume(claim: str, namespace: str) -> list[dict[str, Any]]:
    """A PersistentVolume on the node's /models mount and its claim: ``pvc://`` model URIs."""
    volume = f"{claim}-{namespace}"[:63]
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "manual",
                "hostPath": {"path": "/models"},
                "claimRef": {"namespace": namespace, "name": claim},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "manual",
                "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ]


def apply_argv(folder: Path, env: str, namespace: str) -> list[str]:
    """The one command that makes ``namespace`` hold exactly ``folder``'s objects."""
    argv = [
        "kubectl",
        "apply",
        "--namespace",
        namespace,
        "--filename",
        str(folder),
        "--prune",
        "--selector",
        f"{PART_OF},{ENVIRONMENT_LABEL}={env}",
    ]
    for kind in PRUNABLE:
        argv += ["--prune-allowlist", kind]
    return argv


def operator_env(settings: Settings) -> dict[str, str]:
    """What ``kind_lib.sh`` reads to install the Seldon operator and bound its rollout waits
    (kubectl and helm take whole seconds, ``300s``)."""
    return {
        "SELDON_CHART_REPO": str(settings.seldon_chart_repo),
        "SELDON_CORE_VERSION": str(settings.seldon_core_version),
        "ROLLOUT_TIMEOUT": f"{math.ceil(settings.rollout_timeout)}s",
    }


class KindCluster:
    """The run's environments cluster (found or created by ``kind_cluster.sh up``)."""

    def __init__(self, ctx: StageContext, python: Path) -> None:
        self.ctx = ctx
        self.python = python
        self.name = ctx.settings.name("seldon-envs")
        self.work = ctx.run_dir / "cluster"
        self.kubeconfig = self.work / "kubeconfig"

    def env(self) -> dict[str, str]:
        return child_env(
            CLUSTER_NAME=self.name,
            WORK_DIR=str(self.work),
            KUBECONFIG=str(self.kubeconfig),
            MODEL_STORE=str(self.ctx.run_dir / "model-store"),
            **operator_env(self.ctx.settings),
        )

    def up(self) -> None:
        """Create the cluster once; load the images this run built (new tags each build)."""
        write_image_lists(self.ctx.run_dir, self.work)
        if not self.ctx.settings.keep_environments:
            # cleanup deletes it; with keep_environments, production outlives the run
            self.ctx.tracker.add(
                "kind-cluster", self.name, module=__name__, cluster=self.name, work=str(self.work)
            )
        log = self.work / "kind_cluster.log"
        with open(log, "ab") as out:
            try:
                done = subprocess.run(
                    ["bash", str(integration_dir() / "kind_cluster.sh"), "up"],
                    env=self.env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=UP_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise StageError(
                    f"cluster {self.name} was not up within {UP_TIMEOUT_S}s; see {log}"
                ) from exc
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise StageError(
                f"cluster {self.name} could not be set up (exit {done.returncode}); {log}:\n{tail}"
            )

    def kubectl(self, *args: str) -> str:
        try:
            done = subprocess.run(
                ["kubectl", *args],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=KUBECTL_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StageError(
                f"`kubectl {' '.join(args[:3])} ...` took more than {KUBECTL_TIMEOUT_S}s"
            ) from exc
        if done.returncode != 0:
            raise StageError(
                f"`kubectl {' '.join(args[:3])} ...` failed: "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
        return done.stdout


@teardown_handler("kind-cluster")
def _delete_cluster(params: dict[str, Any]) -> None:
    done = subprocess.run(
        ["bash", str(integration_dir() / "kind_cluster.sh"), "down"],
        env=child_env(CLUSTER_NAME=params["cluster"], WORK_DIR=params["work"]),
        capture_output=True,
        text=True,
        timeout=KUBECTL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise StageError(
            f"could not delete kind cluster {params['cluster']}: {done.stderr.strip()[-400:]}"
        )


class ClusterEnvironment(Environment):
    """One environment as a namespace of the kind cluster."""

    def __init__(
        self, ctx: StageContext, name: str, cluster: KindCluster, rollout_timeout: float
    ) -> None:
        super().__init__(ctx, name, cluster.python)
        self.cluster = cluster
        self.folder = cluster.work / "environments" / name
        self.rollout_timeout = rollout_timeout

    def write(self, files: dict[str, str]) -> str:
        """The folder as applied: the GitOps files plus the model-store volume; returns the
        namespace."""
        namespaces = [
            doc["metadata"]["name"]
            for text in files.values()
            for doc in yaml.safe_load_all(text)
            if isinstance(doc, dict) and doc.get("kind") == "Namespace"
        ]
        if len(namespaces) != 1:
            raise StageError(
                f"{self.name}: the folder must hold exactly one Namespace, not {namespaces}"
            )
        namespace = namespaces[0]
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        for name, text in files.items():
            (self.folder / name).write_text(text)
        volume = model_store_volume(self.ctx.settings.name("seldon-models"), namespace)
        for doc in volume:
            doc["metadata"]["labels"] = {
                "app.kubernetes.io/part-of": "mlops-workshop",
                ENVIRONMENT_LABEL: self.name,
            }
        (self.folder / "01-model-store.yaml").write_text(yaml.safe_dump_all(volume))
        return namespace

    def _states(self, namespace: str) -> dict[str, dict[str, Any]]:
        out = self.cluster.kubectl(
            "get",
            "seldondeployments",
            "--namespace",
            namespace,
            "--selector",
            f"{ENVIRONMENT_LABEL}={self.name}",
            "--output",
            "json",
        )
        return {
            item["metadata"]["name"]: item.get("status") or {}
            for item in json.loads(out).get("items", [])
        }

    def _wait_available(self, namespace: str, names: list[str]) -> dict[str, str]:
        """Bounded wait for every deployment; the ones that never got there, and why."""

        def not_ready(states: dict[str, dict[str, Any]]) -> dict[str, str]:
            return {
                n: str(
                    states.get(n, {}).get("description")
                    or states.get(n, {}).get("state")
                    or "not created yet"
                )
                for n in names
                if states.get(n, {}).get("state") != "Available"
            }

        try:
            wait_until(
                lambda: self._states(namespace),
                what=f"{self.name} SeldonDeployments",
                timeout=self.rollout_timeout,
                interval=2.0,
                until=lambda states: not not_ready(states),
                describe=lambda states: (
                    "; ".join(f"{n}: {why}" for n, why in not_ready(states).items()) or "ready"
                ),
            )
        except WaitTimeout:
            return not_ready(self._states(namespace))
        return {}

    def _forward(self, namespace: str, name: str) -> ManagedServer:
        argv = [
            "kubectl",
            "port-forward",
            "--address",
            "127.0.0.1",
            "--namespace",
            namespace,
            f"svc/{name}-default-classifier",
            f"{{port}}:{MODEL_PORT}",
        ]
        # a forward on loopback answers as soon as it listens: poll often (one per deployment)
        return start_server(
            f"port-forward-{self.name}-{name}",
            argv,
            run_dir=self.ctx.run_dir,
            tracker=self.ctx.tracker,
            env=self.cluster.env(),
            health_path="/health/ping",
            timeout=60,
            interval=0.05,
        )

    def apply(self, files: dict[str, str], commit: str | None) -> dict[str, Any]:
        record = self.record()
        current: dict[str, Any] = record["deployments"]
        desired = parse(files)
        namespace = self.write(files)
        self.cluster.up()
        self.cluster.kubectl(*apply_argv(self.folder, self.name, namespace)[1:])
        failed = self._wait_available(namespace, sorted(desired))
        index = ImageIndex(self.ctx.run_dir / "images")
        store = self.ctx.run_dir / "model-store"
        started, kept = [], []
        for name, doc in desired.items():
            if name in failed:
                continue
            digest, old = spec_hash(doc), current.get(name)
            if old and old["spec_hash"] == digest and self._alive(old):
                kept.append(name)
                continue
            if old:  # its pods were replaced: the old forward points at nothing
                self.ctx.tracker.release(f"process:{old['server']['name']}")
            unit = resolve(doc, index, store)
            forward = self._forward(namespace, name)
            current[name] = {
                "spec_hash": digest,
                "url": forward.url,
                "image": unit.image,
                "version": unit.version,
                "server": forward.to_dict(),
            }
            started.append(name)
        stopped = [] if failed else [n for n in list(current) if n not in desired]
        for name in stopped:  # kubectl pruned it; its forward goes too
            self.ctx.tracker.release(f"process:{current.pop(name)['server']['name']}")
        if not failed:
            record["commit"] = commit
        record["failed"] = {"commit": commit, "deployments": failed} if failed else None
        self._save(record)
        if failed:
            raise ReconcileFailed(self.name, failed)
        return {
            "environment": self.name,
            "commit": record["commit"],
            "namespace": namespace,
            "started": sorted(started),
            "kept": sorted(kept),
            "stopped": stopped,
            "failed": {},
            "deployments": {
                n: {k: e[k] for k in ("url", "version", "image")} for n, e in current.items()
            },
        }
