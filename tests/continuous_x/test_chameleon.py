"""The chameleon backend against fakes: a fake ``chi`` package at the python-chi boundary
and fake ``terraform``, ``ansible-playbook``, ``argo`` and ``kubectl`` executables on PATH
that record how they were called. The backend's own code (subprocess calls, parsing,
inventories, the tracker and cleanup) runs for real."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.continuous_x.chameleon import NODE_PORTS, PLAYBOOKS, ChameleonBackend
from mlops_helpers.continuous_x.stages import PIPELINE
from mlops_helpers.errors import BackendUnavailable, ConfigError, StageError
from mlops_helpers.pipeline import StageContext

CREDENTIALS = {"os_auth_url": "https://chi.example.org:5000/v3",
               "os_application_credential_id": "app-id",
               "os_application_credential_secret": "app-secret", "ssh_key_name": "my-key",
               "gitops_repo": "https://git.example.org/me/workshop.git"}
FAKE_TOOL = """#!/usr/bin/env python3
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"tool": name, "argv": sys.argv[1:], "cwd": os.getcwd(),
                          "gitops": os.environ.get("GITOPS_REPO")}) + "\\n")
if os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in " ".join(sys.argv[:3]):
    print("Error: quota exceeded", file=sys.stderr); sys.exit(1)
if name == "terraform" and sys.argv[1:3] == ["output", "-json"]:
    print(json.dumps({"floating_ip_out": {"value": "203.0.113.7"}, "private_ips": {"value":
        {"node1": "192.168.1.11", "node2": "192.168.1.12", "node3": "192.168.1.13"}}}))
if name == "terraform" and sys.argv[1] == "init":
    os.makedirs(".terraform", exist_ok=True)
if name == "terraform" and sys.argv[1] == "apply":
    open("terraform.tfstate", "w").write("{}")
if name == "argo":
    template = sys.argv[sys.argv.index("--from") + 1].split("/")[1]
    print(json.dumps({"metadata": {"name": template + "-x1"}, "status": {
        "phase": "Succeeded", "nodes": {"n1": {"displayName": "fetch",
                                               "outputs": {"result": "v3-0123456789ab"}}}}}))
"""


class FakeChi:
    """Records the python-chi calls; a lease holds one flavor reservation."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.leases: dict[str, Any] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fake = self
        chi, context = types.ModuleType("chi"), types.ModuleType("chi.context")
        lease_mod, server = types.ModuleType("chi.lease"), types.ModuleType("chi.server")
        context.use_site = lambda site: fake.calls.append(("use_site", site))
        context.use_project = lambda name: fake.calls.append(("use_project", name))

        class Lease:
            def __init__(self, name: str, duration: Any) -> None:
                self.name, self.id, self.status = name, None, None
                self.flavor_reservations: list[dict[str, Any]] = []
                fake.calls.append(("Lease", name, duration.total_seconds() / 3600))

            def add_flavor_reservation(self, name: str, amount: int) -> None:
                fake.calls.append(("flavor", name, amount))
                self.flavor_reservations.append({"flavor": name, "amount": amount})

            def add_fip_reservation(self, amount: int) -> None:
                fake.calls.append(("fip", amount))

            def submit(self, **kwargs: Any) -> None:
                fake.calls.append(("submit", kwargs["idempotent"]))
                self.id, self.status = f"lease-{self.name}", "ACTIVE"
                self.flavor_reservations[0]["id"] = "res-1"
                fake.leases[self.name] = self

            def delete(self) -> None:
                fake.calls.append(("delete_lease", self.name))
                fake.leases.pop(self.name)

        lease_mod.Lease = Lease
        lease_mod.get_lease = lambda name: fake.leases.get(name)
        server.wait_for_tcp = lambda host, port, timeout: fake.calls.append(("tcp", host, port))
        chi.context, chi.lease, chi.server = context, lease_mod, server
        for name, module in (("chi", chi), ("chi.context", context), ("chi.lease", lease_mod),
                             ("chi.server", server)):
            monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture
def chi(monkeypatch: pytest.MonkeyPatch) -> FakeChi:
    fake = FakeChi()
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, log = tmp_path / "bin", tmp_path / "tools.log"
    bin_dir.mkdir()
    for name in ("terraform", "ansible-playbook", "argo", "kubectl"):
        (bin_dir / name).write_text(f"#!{sys.executable}\n" + FAKE_TOOL.split("\n", 1)[1])
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def calls(log: Path, tool: str | None = None) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [e for e in entries if tool is None or e["tool"] == tool]


def context(make_settings, **params: object) -> StageContext:
    settings: Settings = make_settings("continuous_x", backend="chameleon", **params)
    return PIPELINE.context(settings=settings, log=lambda _: None)


def test_missing_credentials_are_named(make_settings, chi: FakeChi, tools: Path) -> None:
    with pytest.raises(ConfigError, match="OS_APPLICATION_CREDENTIAL_ID"):
        ChameleonBackend(context(make_settings))


def test_missing_tools_are_named(make_settings, chi: FakeChi,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackendUnavailable, match="terraform, ansible-playbook, argo, kubectl"):
        ChameleonBackend(context(make_settings, **CREDENTIALS))


def test_platform_build_deploy_and_cleanup(make_settings, chi: FakeChi, tools: Path) -> None:
    ctx = context(make_settings, **CREDENTIALS)
    info = PIPELINE.run_stage("platform", ctx)

    assert chi.calls == [("use_site", "KVM@TACC"), ("Lease", "continuous-x-test", 8.0),
                         ("flavor", "m1.large", 3), ("fip", 1), ("submit", True),
                         ("tcp", "203.0.113.7", 22)]
    terraform = [c["argv"] for c in calls(tools, "terraform")]
    assert [a[0] for a in terraform] == ["init", "apply", "output"]
    assert {"-var=suffix=test", "-var=key=my-key", "-var=reservation_id=res-1"} <= set(
        terraform[1])
    assert all(Path(c["cwd"]) == ctx.run_dir / "terraform" for c in calls(tools, "terraform"))
    inventory = (ctx.run_dir / "inventory.yml").read_text()
    assert "ProxyJump=cc@203.0.113.7" in inventory and "192.168.1.13" in inventory
    playbooks = calls(tools, "ansible-playbook")
    assert [c["argv"][-1] for c in playbooks] == list(PLAYBOOKS)
    assert {c["gitops"] for c in playbooks} == {CREDENTIALS["gitops_repo"]}
    assert info["urls"]["mlflow"] == f"http://203.0.113.7:{NODE_PORTS['mlflow']}"

    bundle = ctx.backend.build("continuous-x-model-test", "3")
    submit = calls(tools, "argo")[-1]["argv"]
    assert "workflowtemplate/build-container-image" in submit
    assert {"model-version=3", "deploy=false"} <= set(submit)
    assert bundle["tag"] == "v3-0123456789ab"
    deployed = ctx.backend.deploy("canary", bundle)
    submit = calls(tools, "argo")[-1]["argv"]
    assert "workflowtemplate/deploy-container-image" in submit
    assert {"environment=canary", "image-tag=v3-0123456789ab", "model-version=3"} <= set(submit)
    assert deployed["url"] == f"http://203.0.113.7:{NODE_PORTS['canary']}"

    PIPELINE.run_stage("cleanup", ctx)
    assert calls(tools, "terraform")[-1]["argv"][:2] == ["destroy", "-auto-approve"]
    assert ("delete_lease", "continuous-x-test") in chi.calls and chi.leases == {}
    assert ctx.tracker.list() == []


def test_a_failed_apply_still_destroys_and_ends_the_lease(make_settings, chi: FakeChi,
                                                          tools: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("FAKE_FAIL", "terraform apply")
    ctx = context(make_settings, **CREDENTIALS)
    with pytest.raises(StageError, match="(?s)terraform apply .*quota exceeded"):
        PIPELINE.run(ctx, stages=["platform"])
    assert calls(tools, "terraform")[-1]["argv"][0] == "destroy"
    assert chi.leases == {} and ctx.tracker.list() == []
    assert calls(tools, "ansible-playbook") == []


def test_a_failed_workflow_says_which_and_why(make_settings, chi: FakeChi, tools: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = context(make_settings, **CREDENTIALS)
    monkeypatch.setenv("FAKE_FAIL", "argo submit")
    with pytest.raises(StageError, match="argo submit -n failed"):
        ctx.backend.build("continuous-x-model-test", "3")
