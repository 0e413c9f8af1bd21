"""The chameleon backend against the OpenStack double (tests/doubles/openstack): the real
python-chi, python-blazarclient, keystoneauth1, novaclient and neutronclient talk to it over
HTTP on 127.0.0.1. Each stage runs in its own ``mlops-workshop continuous_x STAGE`` process,
as Jenkins runs them. ``terraform``, ``ansible-playbook``, ``argo`` and ``kubectl`` are not on
this machine: recording executables stand in for them on PATH (tools/fake_cli.py), and the
terraform one creates and destroys its resources in the double through the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.continuous_x.chameleon import (
    KUBESPRAY_VERSION,
    NODE_PORTS,
    PLAYBOOKS,
    ChameleonBackend,
)
from mlops_helpers.continuous_x.stages import PIPELINE
from mlops_helpers.errors import BackendUnavailable, ConfigError, StageError
from mlops_helpers.pipeline import StageContext
from tests.doubles.openstack.fixture import openstack  # noqa: F401  (fixture)
from tests.doubles.openstack.server import OpenStackDouble

pytestmark = pytest.mark.contract

CLI = Path(sys.executable).parent / "mlops-workshop"
TOOLS = Path(__file__).parent / "tools" / "fake_cli.py"
USER_CIDR = "198.51.100.7/32"
GITOPS = "https://git.example.org/me/workshop.git"


@pytest.fixture
def env(
    tmp_path: Path,
    run_root: Path,
    openstack: OpenStackDouble,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The environment of every stage process: credentials for the double, the recording
    tools first on PATH, the user's address; also set here for in-process backends."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("terraform", "ansible-playbook", "argo", "kubectl"):
        (bin_dir / name).write_text(f"#!{sys.executable}\n" + TOOLS.read_text())
        (bin_dir / name).chmod(0o755)
    values = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "tools.log"),
        "OS_AUTH_URL": openstack.auth_url,
        "OS_APPLICATION_CREDENTIAL_ID": openstack.state.credential_id,
        "OS_APPLICATION_CREDENTIAL_SECRET": openstack.state.credential_secret,
        "SSH_KEY_NAME": "my-key",
        "MLOPS_GITOPS_REPO": GITOPS,
        "MLOPS_API_ALLOWED_CIDR": USER_CIDR,
        # the double's floating IP is 127.0.0.1; its own port stands in for SSH
        "MLOPS_SSH_PORT": str(openstack.port),
        "MLOPS_PROVISION_TIMEOUT": "60",
        "MLOPS_POLL_INTERVAL": "0.1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


def stage(env: dict[str, str], name: str, **params: str) -> subprocess.CompletedProcess[str]:
    argv = [str(CLI), "continuous_x", name, "--backend", "chameleon"]
    for key, value in params.items():
        argv += ["-p", key, value]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)


def calls(env: dict[str, str], tool: str | None = None) -> list[dict[str, Any]]:
    log = Path(env["FAKE_LOG"])
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [e for e in entries if tool is None or e["tool"] == tool]


def context(**params: object) -> StageContext:
    settings = Settings.load("continuous_x", params={"backend": "chameleon", **params})
    return PIPELINE.context(settings=settings, log=lambda _: None)


def assert_nothing_left(cloud: OpenStackDouble) -> None:
    state = cloud.state
    assert state.leases == {} and state.servers == {} and state.floating_ips == {}
    assert [g["name"] for g in state.security_groups.values()] == ["default"]


def test_chi_lease_imports_with_the_extra() -> None:
    from chi import lease  # noqa: F401  (python-chi 1.2 needs python-blazarclient)


def test_no_stand_in_modules_in_the_tests() -> None:
    """No test puts a stand-in python-chi (or any OpenStack client) into the module table."""
    needle = "sys." + "modules"  # spelled apart so this file is no hit itself
    tests = Path(__file__).resolve().parents[1]
    offenders = [
        str(p)
        for p in tests.rglob("*.py")
        if needle in (text := p.read_text())
        and any(name in text for name in ("chi", "blazar", "nova", "neutron"))
    ]
    assert offenders == []


def test_missing_credentials_are_named(make_settings) -> None:
    settings = make_settings("continuous_x", backend="chameleon")
    with pytest.raises(ConfigError, match="OS_APPLICATION_CREDENTIAL_ID"):
        ChameleonBackend(PIPELINE.context(settings=settings, log=lambda _: None))


def test_missing_tools_are_named(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackendUnavailable, match="terraform, ansible-playbook, argo, kubectl"):
        ChameleonBackend(context())


def test_provision_twice_run_workflows_then_teardown(
    env: dict[str, str],
    openstack: OpenStackDouble,  # noqa: F811
    run_root: Path,
) -> None:
    """Platform twice and cleanup, one stage per process; in between, the lifecycle's
    workflows (in-process) on the cluster that platform made (one provisioning serves both)."""
    for attempt in (1, 2):
        done = stage(env, "platform")
        assert done.returncode == 0, f"attempt {attempt}: {done.stderr[-3000:]}"
    cloud = openstack.state
    # idempotent: one lease, one set of three servers on its flavor reservation
    assert [lease["name"] for lease in cloud.leases.values()] == ["continuous-x-test"]
    lease = next(iter(cloud.leases.values()))
    flavor_reservation = next(
        r["id"] for r in lease["reservations"] if r["resource_type"] == "flavor:instance"
    )
    # Blazar took the lease through PENDING and STARTING; the nodes boot on its reserved flavor
    assert cloud.lease_history[lease["id"]] == ["PENDING", "STARTING", "ACTIVE"]
    servers = sorted(s["view"]["name"] for s in cloud.servers.values())
    assert servers == ["node1-mlops-test", "node2-mlops-test", "node3-mlops-test"]
    assert {s["reservation"] for s in cloud.servers.values()} == {flavor_reservation}
    assert {s["view"]["status"] for s in cloud.servers.values()} == {"ACTIVE"}
    assert {s["view"]["flavor"]["original_name"] for s in cloud.servers.values()} == {
        f"reservation:{flavor_reservation}"
    }
    fip = next(iter(cloud.floating_ips.values()))
    assert fip["port_id"] == "sharednet-node1-mlops-test"
    # the Kubernetes API is open to the user's address and nobody else
    api = [r for r in cloud.rules.values() if r["port_range_min"] == 6443]
    assert [r["remote_ip_prefix"] for r in api] == [USER_CIDR]

    terraform = [c["argv"] for c in calls(env, "terraform")]
    apply = next(a for a in terraform if a[0] == "apply")
    assert {
        f"-var=reserved_flavor=reservation:{flavor_reservation}",
        "-var=floating_ip=127.0.0.1",
        f"-var=api_allowed_cidr={USER_CIDR}",
        "-var=suffix=test",
        "-var=key=my-key",
    } <= set(apply)
    assert all(c["os_credentials"] for c in calls(env, "terraform"))
    playbooks = calls(env, "ansible-playbook")
    assert [c["argv"][-1] for c in playbooks] == list(PLAYBOOKS) * 2
    kubespray = next(c["argv"] for c in playbooks if c["argv"][-1] == "k8s/kubespray_hook.yml")
    assert f"kubespray_version={KUBESPRAY_VERSION}" in kubespray
    assert {c["gitops"] for c in playbooks} == {GITOPS}
    run_dir = run_root / "continuous_x-test"
    assert "https://127.0.0.1:6443" in (run_dir / "kubeconfig").read_text()
    assert f"kubeconfig_path={run_dir / 'kubeconfig'}" in kubespray
    # Kubespray is given a folder with its hosts.yaml beside the add-ons' group_vars
    folder = Path(next(a for a in kubespray if a.startswith("kubespray_inventory=")).split("=")[1])
    assert (folder / "hosts.yaml").is_file()
    assert (folder / "group_vars" / "k8s_cluster" / "addons.yml").is_file()

    # the lifecycle's workflows on that cluster use the kubeconfig the platform fetched
    ctx = context()
    kubeconfig = str(ctx.run_dir / "kubeconfig")
    started = ctx.backend.start_training(
        {"dataset": "iris", "model_type": "random_forest", "params": {"n_estimators": 20}}
    )
    submit = calls(env, "argo")[-2]
    assert "workflowtemplate/train-model" in submit["argv"] and "--wait" in submit["argv"]
    assert {
        "model-type=random_forest",
        'params={"n_estimators": 20}',
        "timeout-seconds=120",
    } <= set(submit["argv"])
    assert started["run_id"] == "run0"
    bundle = ctx.backend.build("continuous-x-model-test", "3")
    assert bundle["tag"] == "v3-0123456789ab"
    deployed = ctx.backend.deploy("canary", bundle)
    assert deployed["url"] == f"http://127.0.0.1:{NODE_PORTS['canary']}"
    assert {c["kubeconfig"] for c in calls(env, "argo")} == {kubeconfig}
    # argo v3 prints the workflow as created; the result is read with argo get
    argo = [c["argv"] for c in calls(env, "argo")]
    assert [a[0] for a in argo] == ["submit", "get"] * 3
    assert all(
        a[1].startswith(("train-model-", "build-container-image-", "deploy-")) for a in argo[1::2]
    )

    done = stage(env, "cleanup")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_nothing_left(openstack)
    assert calls(env, "terraform")[-1]["argv"][:2] == ["destroy", "-auto-approve"]


def test_teardown_after_a_creation_that_failed_half_way(
    env: dict[str, str],
    openstack: OpenStackDouble,  # noqa: F811
) -> None:
    openstack.faults.inject(
        "POST", r"/compute/v2.1/servers", status=403, message="Quota exceeded for instances", skip=1
    )
    done = stage(env, "platform")
    assert done.returncode == 1
    assert "terraform apply" in done.stderr and "Traceback" not in done.stderr
    assert len(openstack.state.servers) == 1 and len(openstack.state.leases) == 1
    assert calls(env, "ansible-playbook") == []

    done = stage(env, "cleanup")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_nothing_left(openstack)


def test_a_refused_lease_is_one_line_and_teardown_still_succeeds(
    env: dict[str, str],
    openstack: OpenStackDouble,  # noqa: F811
) -> None:
    openstack.faults.inject(
        "POST",
        r"/reservation/v1/leases",
        status=400,
        message="Not enough resources available with query",
        times=5,
    )
    done = stage(env, "platform")
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: Chameleon") and "Traceback" not in done.stderr
    assert "not enough resources" in done.stderr.lower()
    assert len(done.stderr.strip().splitlines()) == 1
    assert calls(env, "terraform") == []
    done = stage(env, "cleanup")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_nothing_left(openstack)


def test_a_lease_that_does_not_start_is_waited_for_within_the_timeout(
    env: dict[str, str],
    openstack: OpenStackDouble,  # noqa: F811
) -> None:
    """Blazar keeps a lease PENDING until it starts: the wait is bounded by provision_timeout
    and says which lease, how long and the last status; nothing else is created."""
    openstack.state.lease_start_seconds = None
    done = stage({**env, "MLOPS_PROVISION_TIMEOUT": "1.5"}, "platform")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "continuous-x-test" in done.stderr and "timed out" in done.stderr, done.stderr
    assert "last status: PENDING" in done.stderr, done.stderr
    assert calls(env, "terraform") == []
    done = stage(env, "cleanup")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_nothing_left(openstack)


def test_a_lease_that_ends_in_error_stops_the_wait(
    env: dict[str, str],
    openstack: OpenStackDouble,  # noqa: F811
) -> None:
    openstack.state.lease_start_error = True
    done = stage(env, "platform")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "lease continuous-x-test" in done.stderr and "ERROR" in done.stderr, done.stderr
    assert calls(env, "terraform") == []
    assert stage(env, "cleanup").returncode == 0
    assert_nothing_left(openstack)


def test_the_api_port_needs_the_users_address_before_anything_is_made(
    env: dict[str, str],
    openstack: OpenStackDouble,  # noqa: F811
) -> None:
    for value in ("", "0.0.0.0/0", "not-an-address"):
        done = stage({**env, "MLOPS_API_ALLOWED_CIDR": value}, "platform")
        assert done.returncode == 1 and "api_allowed_cidr" in done.stderr, done.stderr
    assert openstack.log == []


def test_wrong_credentials_are_refused_readably(
    env: dict[str, str],
    openstack: OpenStackDouble,  # noqa: F811
) -> None:
    done = stage({**env, "OS_APPLICATION_CREDENTIAL_SECRET": "wrong-secret"}, "platform")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "wrong-secret" not in done.stderr + done.stdout
    assert openstack.state.leases == {}


@pytest.fixture
def cluster_ctx(env: dict[str, str]) -> StageContext:
    """A context whose run directory holds a kubeconfig, as after the platform stage."""
    ctx = context()
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / "kubeconfig").write_text("apiVersion: v1\n")
    return ctx


def test_a_workflow_that_fails_on_the_cluster_names_it_and_its_step(
    cluster_ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argo submit --wait exits 1 when the workflow fails, having printed only the created
    workflow: the reason is in argo get's status (the failed step and its message)."""
    monkeypatch.setenv("FAKE_WORKFLOW_FAIL", "fetch")
    with pytest.raises(StageError) as failed:
        cluster_ctx.backend.build("continuous-x-model-test", "3")
    message = str(failed.value)
    assert re.search(
        r"workflow build-container-image-\w{5} \(build-container-image\) ended Failed", message
    ), message
    assert "fetch: Error (exit code 1)" in message


def test_a_training_workflow_without_a_run_id_is_refused(
    cluster_ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RUN_ID", "")
    with pytest.raises(StageError, match="printed no run id"):
        cluster_ctx.backend.start_training({"dataset": "iris", "model_type": "random_forest"})


def test_a_failed_workflow_says_which_and_why(env: dict[str, str]) -> None:
    ctx = context()
    (ctx.run_dir).mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / "kubeconfig").write_text("apiVersion: v1\n")
    env_fail = {"FAKE_FAIL": "argo submit"}
    os.environ.update(env_fail)
    try:
        with pytest.raises(StageError, match="argo submit -n failed"):
            ctx.backend.build("continuous-x-model-test", "3")
    finally:
        os.environ.pop("FAKE_FAIL")
