"""Staging and production on the kind backend, checked without a cluster:

- what reconcile applies is valid (kubernetes-validate for the standard kinds, our schema for
  SeldonDeployments);
- the real kubectl accepts it and the exact flags reconcile uses, in a client-side dry run
  against a Kubernetes API double on loopback, and prunes only this environment's objects;
- reconciling runs the expected command sequence: recording ``docker``/``kind``/``helm``/
  ``kubectl`` executables on PATH (external CLIs, the backend and scripts are real), whose
  ``kubectl port-forward`` stands in for the pod behind the service.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.errors import StageError
from mlops_helpers.paths import scenarios_dir
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind import stages
from mlops_helpers.seldon_kind.catalog import DEPLOYMENTS, FOLDERS
from mlops_helpers.seldon_kind.cluster import ClusterEnvironment, apply_argv
from mlops_helpers.seldon_kind.manifests import validate_folder
from mlops_helpers.seldon_kind.modelwork import child_env
from mlops_helpers.seldon_kind.reconcile import ReconcileFailed
from mlops_helpers.seldon_kind.serving import ImageIndex
from tests.doubles.kubernetes import FakeKubeApi, serving
from tests.support import leftover_processes

APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MODELS = scenarios_dir() / "seldon_kind" / "models"
IRIS = {"sample": [[5.1, 3.5, 1.4, 0.2]], "n_features": 4, "class_names": ["a", "b", "c"]}
WINE = {"sample": [[13.0] * 13], "n_features": 13, "class_names": ["a", "b", "c"]}
NEWS = {"sample": ["the striker scored"], "class_names": ["sport", "tech"]}
META = {"sklearn-iris": IRIS, "linear-iris": IRIS, "linear-wine": WINE, "news-classifier": NEWS}

KUBECTL = """#!/bin/sh
echo "kubectl $*" >> "{calls}"
case "$1" in
  get) cat "{stub}/sdeps.json" ;;
  port-forward)
    for arg; do last="$arg"; done
    exec "{python}" "{stub}/pod.py" "${{last%%:*}}" ;;
esac
exit 0
"""
KIND = """#!/bin/sh
echo "kind $*" >> "{calls}"
case "$1 $2" in
  "get clusters") cat "{stub}/clusters" 2>/dev/null ;;
  "create cluster") echo "$4" >> "{stub}/clusters" ;;
  "get kubeconfig") echo "apiVersion: v1" ;;
esac
exit 0
"""
OTHER = """#!/bin/sh
echo "$(basename "$0") $*" >> "{calls}"
[ "$1" = info ] && echo 27.0.1
exit 0
"""
#: the pod behind `kubectl port-forward svc/...`: answers as a Seldon model container does
POD = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Pod(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def _answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self._answer("pong")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer({"data": {"names": [], "ndarray": [[1.0]]}})

HTTPServer(("127.0.0.1", int(sys.argv[1])), Pod).serve_forever()
"""


def _context(make: Callable[..., StageContext], **params: Any) -> StageContext:
    """A kind-backend context whose run has trained, built and passed its unit tests."""
    ctx = make(backend="kind", **params)
    index = ImageIndex(ctx.run_dir / "images")
    images = {}
    for name, folder in FOLDERS.items():
        ref = f"seldon-workshop/{folder.image}:0123456789ab"
        index.add(
            ref,
            str(MODELS / name),
            {"sklearn_prebuilt": "SKLEARN_SERVER", "linear_server": "LINEAR_SERVER"}.get(name),
        )
        images[name] = {"ref": ref, "tag": "0123456789ab"}
    models = {
        d.name: {"version": f"{i}" * 12, "meta": META[d.name], "path": "/nowhere"}
        for i, d in enumerate(DEPLOYMENTS, start=1)
    }
    ctx.state.update(images=images, models=models, unit_tests={"id": "run-1", "passed": True})
    return ctx


def _stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, stub, calls = tmp_path / "bin", tmp_path / "stub", tmp_path / "calls.log"
    bin_dir.mkdir()
    stub.mkdir()
    (stub / "pod.py").write_text(POD)
    fill = {"calls": calls, "stub": stub, "python": sys.executable}
    for tool, text in (("kubectl", KUBECTL), ("kind", KIND), ("docker", OTHER), ("helm", OTHER)):
        (bin_dir / tool).write_text(text.format(**fill))
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return calls


def _sdeps(
    tmp_path: Path, names: list[str], state: str = "Available", description: str = ""
) -> None:
    items = [
        {"metadata": {"name": n}, "status": {"state": state, "description": description}}
        for n in names
    ]
    (tmp_path / "stub" / "sdeps.json").write_text(json.dumps({"items": items}))


def test_what_reconcile_applies_is_valid_kubernetes(
    context: Callable[..., StageContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stubs(tmp_path, monkeypatch)
    ctx = _context(context)
    env = ctx.backend.environment("staging")
    assert isinstance(env, ClusterEnvironment)
    namespace = env.write(stages.render_release(ctx, "staging"))
    assert namespace == "seldon-staging-test"
    assert validate_folder(env.folder) == {}
    assert len(list(env.folder.glob("*.yaml"))) == len(DEPLOYMENTS) + 2  # + ns, volume


def test_kubectl_accepts_it_offline_and_prunes_only_this_environment(
    context: Callable[..., StageContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stubs(tmp_path, monkeypatch)
    ctx = _context(context)
    env = ctx.backend.environment("staging")
    namespace = env.write(stages.render_release(ctx, "staging"))
    api = FakeKubeApi()
    labels = {"app.kubernetes.io/part-of": "mlops-workshop"}
    for name, environment in (("retired-test", "staging"), ("elsewhere-test", "production")):
        api.add(
            "seldondeployments",
            {
                "apiVersion": "machinelearning.seldon.io/v1",
                "kind": "SeldonDeployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**labels, "mlops-workshop/environment": environment},
                    # kubectl prunes only what `kubectl apply` created
                    "annotations": {APPLIED: "{}"},
                },
            },
        )
    with serving(api, tmp_path) as kubeconfig:
        done = subprocess.run(
            [*apply_argv(env.folder, "staging", namespace), "--dry-run=client", "--validate=false"],
            env=child_env(KUBECONFIG=str(kubeconfig), PATH="/usr/bin:/bin"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for dep in DEPLOYMENTS:
        assert (
            f"seldondeployment.machinelearning.seldon.io/{dep.name}-test created (dry run)" in out
        ), out
    assert f"namespace/{namespace} created (dry run)" in out
    assert "persistentvolumeclaim/seldon-models-test created (dry run)" in out
    assert "seldondeployment.machinelearning.seldon.io/retired-test pruned (dry run)" in out
    assert "elsewhere-test" not in out, "another environment's object must not be pruned"


def test_reconcile_runs_the_cluster_sequence_and_prunes_by_label(
    context: Callable[..., StageContext],
    tmp_path: Path,
    run_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _stubs(tmp_path, monkeypatch)
    ctx = _context(context)
    env = ctx.backend.environment("staging")
    files = stages.render_release(ctx, "staging")
    names = [f"{d.name}-test" for d in DEPLOYMENTS]
    _sdeps(tmp_path, names)
    try:
        report = env.apply(files, commit="c1")
        assert report["started"] == sorted(names) and report["namespace"] == "seldon-staging-test"
        assert stages.smoke_test(ctx, "staging", report["deployments"]) == dict.fromkeys(names, 200)
        first = calls.read_text().splitlines()
        steps = [" ".join(line.split()[:3]) for line in first]
        order = [
            "kind get clusters",
            "kind create cluster",
            "kind get kubeconfig",
            "helm upgrade --install",
            "docker build --quiet",
            "kind load docker-image",
            "kubectl apply --namespace",
            "kubectl get seldondeployments",
            "kubectl port-forward --address",
        ]
        positions = [steps.index(step) for step in order]
        assert positions == sorted(positions), steps
        apply = next(line for line in first if line.startswith("kubectl apply"))
        assert (
            f"--filename {env.folder} --prune --selector app.kubernetes.io/part-of="
            f"mlops-workshop,mlops-workshop/environment=staging" in apply
        )
        assert "--prune-allowlist machinelearning.seldon.io/v1/SeldonDeployment" in apply
        assert steps.count("kubectl port-forward --address") == len(DEPLOYMENTS)

        # linear-wine leaves the folder: pruned by kubectl, its forward stopped, no restarts
        smaller = {k: v for k, v in files.items() if k != "linear-wine.yaml"}
        _sdeps(tmp_path, names[:2] + names[3:])
        again = env.apply(smaller, commit="c2")
        assert again["stopped"] == ["linear-wine-test"] and again["started"] == []
        assert len(again["kept"]) == len(DEPLOYMENTS) - 1
        second = calls.read_text().splitlines()[len(first) :]
        assert not [
            line for line in second if line.startswith(("kind create", "kubectl port-forward"))
        ]
        assert env.record()["commit"] == "c2"
    finally:
        ctx.tracker.cleanup(log=lambda _m: None)
    assert "kind delete cluster --name seldon-envs-test" in calls.read_text()
    assert leftover_processes(str(run_root)) == []


def test_a_deployment_that_never_becomes_available_keeps_the_old_one(
    context: Callable[..., StageContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stubs(tmp_path, monkeypatch)
    ctx = _context(context, rollout_timeout=0.5)
    env = ctx.backend.environment("staging")
    _sdeps(
        tmp_path,
        [f"{d.name}-test" for d in DEPLOYMENTS],
        state="Creating",
        description="ErrImagePull: seldon-workshop/news-classifier:doesnotexist",
    )
    try:
        with pytest.raises(ReconcileFailed, match="ErrImagePull"):
            env.apply(stages.render_release(ctx, "staging"), commit="c1")
        record = env.record()
        assert record["commit"] is None and record["failed"]["commit"] == "c1"
    finally:
        ctx.tracker.cleanup(log=lambda _m: None)


def test_smoke_test_refuses_an_environment_that_does_not_answer(
    context: Callable[..., StageContext],
) -> None:
    ctx = _context(context)
    with pytest.raises(StageError, match="smoke test: sklearn-iris-test"):
        stages.smoke_test(ctx, "staging", {"sklearn-iris-test": {"url": "http://127.0.0.1:9"}})


def test_keep_environments_leaves_the_cluster_for_the_next_build(
    context: Callable[..., StageContext],
    tmp_path: Path,
    run_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CI job's production outlives its builds: cleanup stops the port-forwards only."""
    calls = _stubs(tmp_path, monkeypatch)
    ctx = _context(context, keep_environments="true")
    _sdeps(tmp_path, [f"{d.name}-test" for d in DEPLOYMENTS])
    try:
        ctx.backend.environment("production").apply(
            stages.render_release(ctx, "production"), commit="c1"
        )
    finally:
        ctx.tracker.cleanup(log=lambda _m: None)
    assert "kind delete" not in calls.read_text()
    assert ctx.tracker.list() == [] and leftover_processes(str(run_root)) == []
