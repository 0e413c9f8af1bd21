"""The kind backend: refuses at once without its tools; its script passes shellcheck, runs
the steps in order with the fixed kubeconfig call, and always deletes the cluster.

The cluster tools (docker, kind, helm, kubectl) are replaced by recording stubs on PATH:
the fakes sit at the tools' command-line boundary, the script and the backend are real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_helpers.errors import BackendUnavailable, StageError
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind import kind
from mlops_helpers.seldon_kind.base import integration_dir
from mlops_helpers.seldon_kind.manifests import dump, namespace
from mlops_helpers.seldon_kind.serving import ImageIndex

SCRIPT = integration_dir() / "kind_test_all.sh"
STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{calls}"
case "$(basename "$0") $1 $2" in
  "docker info"*) echo 27.0.1 ;;
  "kind get kubeconfig"*) echo "apiVersion: v1" ;;
  "kubectl get sdep"*) echo "seldon-test-test" ;;
  "helm upgrade"*) exit {helm_exit} ;;
esac
exit 0
"""
FAKE_PYTHON = """#!/bin/sh
echo "e2e $*" >> "{calls}"
printf '{{"passed": true, "results": [], "targets": %s}}\\n' "$(tr -d '\\n' < "$2")"
"""


def test_scripts_pass_shellcheck() -> None:
    exe = Path(sys.executable).with_name("shellcheck")
    scripts = [
        str(integration_dir() / name)
        for name in ("kind_test_all.sh", "kind_cluster.sh", "kind_lib.sh")
    ]
    done = subprocess.run(
        [str(exe), "--severity=style", "--external-sources", *scripts],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_script_uses_the_current_kubeconfig_command() -> None:
    text = SCRIPT.read_text() + (integration_dir() / "kind_lib.sh").read_text()
    assert "kubeconfig-path" not in text.replace("`kind get kubeconfig-path`", "")
    assert "kind get kubeconfig --name" in text and "trap cleanup EXIT" in text


def test_backend_refuses_at_once_and_names_what_is_missing(
    context: Callable[..., StageContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kind.shutil, "which", lambda tool: None if tool == "kind" else tool)
    monkeypatch.setattr(
        kind.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(
            a, 1, "", "Cannot connect to the Docker daemon"
        ),
    )
    ctx = context(backend="kind")
    with pytest.raises(BackendUnavailable) as info:
        _ = ctx.backend
    message = str(info.value)
    assert "kind (not on PATH)" in message and "a docker engine" in message
    assert "helm" not in message and "backend='local'" in message


def test_this_machine_gets_the_same_answer_as_the_doctor(
    context: Callable[..., StageContext],
) -> None:
    missing = kind.missing_prerequisites()
    if not missing:
        pytest.skip("this machine can run kind")
    with pytest.raises(BackendUnavailable, match="the kind backend needs"):
        _ = context(backend="kind").backend


def _stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helm_exit: int) -> Path:
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("docker", "kind", "helm", "kubectl", "nc"):
        path = bin_dir / tool
        path.write_text(STUB.format(calls=calls, helm_exit=helm_exit))
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return calls


def _prepared(ctx: StageContext, tmp_path: Path) -> kind.KindBackend:
    image = tmp_path / "image"
    image.mkdir()
    index = ImageIndex(ctx.run_dir / "images")
    index.add("seldon-workshop/news-classifier:abc", str(image))
    index.add("seldon-workshop/linear-server:def", str(image), "LINEAR_SERVER")
    backend = ctx.backend
    fake_python = tmp_path / "python"
    fake_python.write_text(FAKE_PYTHON.format(calls=tmp_path / "calls.log"))
    fake_python.chmod(0o755)
    backend._python = fake_python
    return backend


def test_script_runs_every_step_and_deletes_the_cluster(
    context: Callable[..., StageContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _stubs(tmp_path, monkeypatch, helm_exit=0)
    ctx = context(backend="kind")
    backend = _prepared(ctx, tmp_path)
    manifests = {"00-namespace.yaml": dump(namespace("seldon-test-test"))}
    targets = [
        {"name": "news-classifier-test", "payload": {"data": {"ndarray": [["x"]]}}, "bad": {}}
    ]
    report = backend.integration_test(manifests, targets)
    assert report["passed"]
    endpoint = report["targets"]["targets"][0]["endpoint"]
    steps = [line.split()[:3] for line in calls.read_text().splitlines()]
    order = [
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster"],
        ["kind", "get", "kubeconfig"],
        ["helm", "upgrade", "--install"],
        ["docker", "build", "--quiet"],
        ["kind", "load", "docker-image"],
        ["kubectl", "apply", "-f"],
        ["kubectl", "wait", "sdep"],
        ["kubectl", "port-forward", "--namespace"],
        [
            "e2e",
            str(integration_dir() / "e2e_seldon_client.py"),
            str(ctx.run_dir / "integration" / "kind" / "targets.json"),
        ],
        ["kind", "delete", "cluster"],
    ]
    positions = [steps.index(step) for step in order]
    assert positions == sorted(positions), steps
    log = calls.read_text()
    assert f"{endpoint.split(':')[1]}:9000" in log
    assert "news-classifier-test-default-classifier" in log
    assert "--version 1.18.2 " in log and "--repo https://" in log
    assert "kind delete cluster --name seldon-e2e-test" in log
    server = "predictor_servers.LINEAR_SERVER.protocols.seldon"
    assert f"{server}.image=seldon-workshop/linear-server" in log
    assert f"{server}.defaultImageVersion=def" in log
    work = ctx.run_dir / "integration" / "kind"
    volume = (work / "manifests" / "01-model-store.yaml").read_text()
    assert "PersistentVolumeClaim" in volume and "namespace: seldon-test-test" in volume
    assert "seldon-workshop/news-classifier:abc" in (work / "images.txt").read_text()
    assert json.loads((work / "targets.json").read_text())["targets"][0]["endpoint"] == endpoint


def test_a_failing_install_still_deletes_the_cluster(
    context: Callable[..., StageContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _stubs(tmp_path, monkeypatch, helm_exit=1)
    backend = _prepared(context(backend="kind"), tmp_path)
    with pytest.raises(StageError, match="before the end-to-end check"):
        backend.integration_test({"00-namespace.yaml": dump(namespace("seldon-test-test"))}, [])
    log = calls.read_text()
    assert "helm upgrade --install" in log and "kind delete cluster" in log
    assert "kubectl apply" not in log and "e2e_seldon_client" not in log
