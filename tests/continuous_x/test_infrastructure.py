"""The infrastructure files, checked by their own tools: python-hcl2 for Terraform,
ansible-playbook --syntax-check and ansible-lint, shellcheck for the workflows' scripts,
kubernetes-validate for the manifests."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Any

import hcl2
import pytest
import yaml

from mlops_helpers.continuous_x.registry import WORKFLOWS, scenario_dir
from mlops_helpers.continuous_x.stages import PIPELINE

ROOT = scenario_dir()
BIN = Path(sys.executable).parent
TF_DIR = ROOT / "tf" / "kvm"
PLAYBOOKS = sorted(
    p.relative_to(ROOT / "ansible")
    for p in (ROOT / "ansible").rglob("*.yml")
    if "tasks" not in p.parts and "inventory" not in p.parts
)
MANIFESTS = sorted(p for p in (ROOT / "k8s").rglob("*.yaml") if p.name != "kustomization.yaml")
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


def _tool(name: str) -> str:
    return str(BIN / name)


def _workflow(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "workflows" / f"{name}.yaml").read_text())
    return doc


# -- Terraform ---------------------------------------------------------------------------------
def _unquote(value: Any) -> Any:
    """python-hcl2 5.x keeps the quotes of block labels and strings; drop them."""
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _terraform() -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(TF_DIR.glob("*.tf")):
        with path.open() as handle:
            for key, blocks in _unquote(hcl2.load(handle)).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


def test_terraform_declares_the_variables_it_uses() -> None:
    tf = _terraform()
    declared = {name for block in tf["variable"] for name in block}
    assert {"suffix", "key", "reserved_flavor", "image"} <= declared
    used = set()
    for path in TF_DIR.glob("*.tf"):
        used |= set(re.findall(r"\bvar\.([a-z_]+)", path.read_text()))
    assert used <= declared, f"undeclared: {used - declared}"
    assert declared - used == set(), f"declared but unused: {declared - used}"


def test_terraform_makes_three_vms_network_security_group_and_floating_ip() -> None:
    tf = _terraform()
    resources = {kind: body for block in tf["resource"] for kind, body in block.items()}
    assert {
        "openstack_compute_instance_v2",
        "openstack_networking_network_v2",
        "openstack_networking_secgroup_v2",
        "openstack_networking_floatingip_associate_v2",
    } <= set(resources)
    # the lease's reserved address is attached, no second one is allocated from a pool
    assert "openstack_networking_floatingip_v2" not in resources
    assert (
        resources["openstack_networking_floatingip_associate_v2"]["floating_ip"]["floating_ip"]
        == "${var.floating_ip}"
    )
    nodes = next(b for b in tf["variable"] if "nodes" in b)["nodes"]["default"]
    assert len(nodes) == 3


def test_the_nodes_boot_on_the_leases_reserved_flavor() -> None:
    """KVM@TACC: a flavor lease gives the flavor reservation:<id>, and the instance boots on it
    (python-chi Lease.get_reserved_flavors), not on the base flavor with a scheduler hint."""
    tf = _terraform()
    resources = {kind: body for block in tf["resource"] for kind, body in block.items()}
    nodes = resources["openstack_compute_instance_v2"]["nodes"]
    assert nodes["flavor_name"] == "${var.reserved_flavor}"
    assert "scheduler_hints" not in nodes
    variable = next(b for b in tf["variable"] if "reserved_flavor" in b)["reserved_flavor"]
    assert "default" not in variable
    assert 'startswith(var.reserved_flavor, "reservation:")' in str(variable["validation"])


def test_the_kubernetes_api_is_open_to_the_users_address_only() -> None:
    resources = {
        kind: body
        for block in _terraform()["resource"]
        for kind, body in block.items()
        if kind == "openstack_networking_secgroup_rule_v2"
    }
    rules = resources["openstack_networking_secgroup_rule_v2"]
    api = rules["kube_api"]
    assert (api["port_range_min"], api["port_range_max"]) == (6443, 6443)
    assert api["remote_ip_prefix"] == "${var.api_allowed_cidr}"
    opened = next(b for b in _terraform()["variable"] if "open_ports" in b)
    assert 6443 not in opened["open_ports"]["default"]  # not in the rule open to allowed_cidr
    api_var = next(b for b in _terraform()["variable"] if "api_allowed_cidr" in b)
    assert (
        "default" not in api_var["api_allowed_cidr"] and api_var["api_allowed_cidr"]["validation"]
    )


def test_kubespray_is_fetched_at_the_pinned_release_and_the_kubeconfig_fetched() -> None:
    from mlops_helpers.continuous_x.chameleon import KUBESPRAY_VERSION

    plays = yaml.safe_load((ROOT / "ansible" / "k8s" / "kubespray_hook.yml").read_text())
    tasks = [t for play in plays for t in play["tasks"]]
    git = next(t["ansible.builtin.git"] for t in tasks if "ansible.builtin.git" in t)
    assert git["version"] == "{{ kubespray_version }}" and "kubespray" in git["repo"]
    assert plays[0]["vars"]["kubespray_version"] == KUBESPRAY_VERSION
    assert re.fullmatch(r"v\d+\.\d+\.\d+", KUBESPRAY_VERSION)
    fetch = next(t["ansible.builtin.fetch"] for t in tasks if "ansible.builtin.fetch" in t)
    assert fetch["src"] == "/etc/kubernetes/admin.conf"
    assert fetch["dest"] == "{{ kubeconfig_path }}"
    text = (ROOT / "ansible" / "k8s" / "kubespray_hook.yml").read_text()
    assert "supplementary_addresses_in_ssl_keys" in text  # the cert names the floating IP
    assert "/latest/" not in text and "/stable/" not in text  # Argo installs pinned too


def test_mlflow_server_image_and_client_share_the_major_version() -> None:
    import importlib.metadata

    docs = yaml.safe_load_all((ROOT / "k8s" / "platform" / "mlflow.yaml").read_text())
    images = [
        c["image"]
        for d in docs
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        if "mlflow" in c["image"]
    ]
    assert images, "no MLflow server image"
    server_major = int(re.search(r":v?(\d+)\.", images[0]).group(1))
    client_major = int(importlib.metadata.version("mlflow").split(".")[0])
    assert server_major == client_major
    pins = (ROOT / "services" / "requirements.txt").read_text()
    pin = re.search(r"^mlflow>=(\d+)[^,]*,<(\d+)$", pins, re.MULTILINE)
    assert pin and int(pin.group(1)) == server_major and int(pin.group(2)) == server_major + 1


def test_terraform_has_no_literal_addresses_or_projects() -> None:
    """Addresses only as variable defaults (a CIDR), never inside a resource (a node's own
    loopback name in /etc/hosts is no address of anything)."""
    for path in TF_DIR.glob("*.tf"):
        if path.name == "variables.tf":
            continue
        text = path.read_text()
        found = [a for a in IPV4.findall(text) if not ipaddress.ip_address(a).is_loopback]
        assert found == [], f"{path.name} has literal addresses {found}"
        assert "project" not in text.lower() or path.name == "versions.tf", path.name
    for block in _terraform()["variable"]:
        for body in block.values():
            default = body.get("default")
            if isinstance(default, str) and IPV4.search(default):
                ipaddress.ip_network(default)  # a network range, not a host


# -- Ansible -----------------------------------------------------------------------------------
# documentation addresses: the floating IP and the nodes' private ones
DOC_ADDRESSES = {
    "floating_ip": "203.0.113.10",
    "node1": "192.168.1.11",
    "node2": "192.168.1.12",
    "node3": "192.168.1.13",
}


def _plays(playbook: str) -> list[dict[str, Any]]:
    plays: list[dict[str, Any]] = yaml.safe_load((ROOT / "ansible" / playbook).read_text())
    return plays


def _tasks(play: dict[str, Any], base: Path) -> list[dict[str, Any]]:
    """A play's tasks with the task files it includes (relative to the playbook's folder)."""
    found = []
    for task in play.get("tasks", []):
        found.append(task)
        include = task.get("ansible.builtin.include_tasks")
        if include:
            found += yaml.safe_load((base / include).read_text())
    return found


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The inventory rendered the way the chameleon backend renders it (documentation IPs)."""
    template = (ROOT / "ansible" / "inventory.yml.tmpl").read_text()
    path = tmp_path_factory.mktemp("ansible") / "inventory.yml"
    path.write_text(Template(template).substitute(DOC_ADDRESSES))
    return path


def test_there_are_the_playbooks_of_the_write_up() -> None:
    names = {p.name for p in PLAYBOOKS}
    assert {
        "pre_k8s_configure.yml",
        "kubespray_hook.yml",
        "argocd_add_platform.yml",
        "argocd_add_staging.yml",
        "argocd_add_canary.yml",
        "argocd_add_prod.yml",
        "workflow_templates_apply.yml",
    } <= names


@pytest.fixture(scope="module")
def kubespray_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kubespray's inventory folder rendered the way the chameleon backend renders it."""
    from mlops_helpers.continuous_x.chameleon import render_kubespray_inventory

    target = tmp_path_factory.mktemp("kubespray") / "mycluster"
    render_kubespray_inventory(ROOT / "ansible", target, DOC_ADDRESSES)
    return target


def test_playbook_syntax(inventory: Path, kubespray_inventory: Path) -> None:
    """Every playbook in one ansible-playbook call (it checks each one it is given), with the
    workshop's inventory and Kubespray's inventory folder as the backend renders them."""
    done = subprocess.run(
        [
            _tool("ansible-playbook"),
            "--syntax-check",
            "-i",
            str(inventory),
            "-i",
            str(kubespray_inventory),
            *map(str, PLAYBOOKS),
        ],
        cwd=ROOT / "ansible",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    checked = set(re.findall(r"^playbook: (\S+)$", done.stdout, re.MULTILINE))
    assert checked == {str(p) for p in PLAYBOOKS}, done.stdout


def test_kubespray_reads_the_addons_and_reaches_the_nodes_through_the_jump_host(
    kubespray_inventory: Path,
) -> None:
    """ansible-inventory shows what Ansible (and so Kubespray) reads from the folder the backend
    gives it: the add-ons from group_vars next to hosts.yaml, as in Kubespray's
    inventory/sample layout, and a user and jump host for the private addresses."""
    for layout in ("hosts.yaml", "group_vars/k8s_cluster/addons.yml"):
        assert (kubespray_inventory / layout).is_file(), layout
    done = subprocess.run(
        [_tool("ansible-inventory"), "-i", str(kubespray_inventory), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    hostvars = json.loads(done.stdout)["_meta"]["hostvars"]
    assert set(hostvars) == {"node1", "node2", "node3"}
    for node, found in hostvars.items():
        assert found["registry_enabled"] is True and found["ingress_nginx_enabled"] is True
        assert found["registry_service_type"] == "NodePort"
        assert found["ansible_host"] == found["ip"] == DOC_ADDRESSES[node]
        assert found["ansible_user"] == "cc"
        jump = found["ansible_ssh_common_args"]
        assert 'ProxyCommand="ssh -W %h:%p' in jump and "cc@203.0.113.10" in jump
        assert jump.count("StrictHostKeyChecking=no") == 2  # the jump host's ssh too


def test_kubespray_runs_with_its_own_ansible_config() -> None:
    tasks = [t for play in _plays("k8s/kubespray_hook.yml") for t in play["tasks"]]
    run = next(t for t in tasks if "cluster.yml" in str(t.get("ansible.builtin.command")))
    assert run["ansible.builtin.command"]["chdir"] == "{{ kubespray_dir }}"
    assert run["environment"]["ANSIBLE_CONFIG"] == "{{ kubespray_dir }}/ansible.cfg"
    assert "-i {{ kubespray_inventory }}" in run["ansible.builtin.command"]["cmd"]


def test_the_registry_is_a_name_the_nodes_and_the_pods_resolve(
    kubespray_inventory: Path,
) -> None:
    """containerd on the nodes pulls what kaniko in a pod pushed: both use node1 and the
    registry's NodePort; node1 is in Kubespray's inventory (its /etc/hosts) and in CoreDNS's
    hosts file (dns_etchosts)."""
    addons = yaml.safe_load((kubespray_inventory / "group_vars/k8s_cluster/addons.yml").read_text())
    registry = f"node1:{addons['registry_service_nodeport']}"
    pre_k8s = _plays("pre_k8s/pre_k8s_configure.yml")[0]
    assert pre_k8s["vars"]["registry"] == registry
    apply = _plays("argocd/workflow_templates_apply.yml")[0]
    assert apply["vars"]["addresses"]["REGISTRY"] == registry
    for env in ("staging", "canary", "production"):
        kustomization = yaml.safe_load((ROOT / "k8s" / env / "kustomization.yaml").read_text())
        assert kustomization["images"][0]["newName"] == f"{registry}/continuous-x-app"
    done = subprocess.run(
        [
            _tool("ansible"),
            "-i",
            str(kubespray_inventory),
            "node2",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "var=dns_etchosts",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{DOC_ADDRESSES['node1']} node1" in done.stdout, done.stdout


def test_every_file_is_written_into_a_folder_made_before_it() -> None:
    """ansible.builtin.copy does not create the destination's folder (containerd's certs.d/
    <registry> is not there before Kubespray): each one is made by an earlier task."""
    checked = 0
    for playbook in PLAYBOOKS:
        for play in _plays(str(playbook)):
            made = {"/etc"}
            for task in _tasks(play, ROOT / "ansible" / playbook.parent):
                module = task.get("ansible.builtin.file") or {}
                if module.get("state") == "directory":
                    made.add(module["path"])
                dest = (task.get("ansible.builtin.copy") or {}).get("dest")
                if dest and not dest.endswith("/") and not dest.startswith("{{"):
                    assert str(Path(dest).parent) in made, f"{playbook}: {task['name']}"
                    checked += 1
    assert checked >= 3


def test_argocd_is_installed_where_the_playbooks_call_it() -> None:
    from mlops_helpers.continuous_x.chameleon import PLAYBOOKS as ORDER

    installed: set[str] = set()
    calls = 0
    for playbook in ORDER:
        for play in _plays(playbook):
            tasks = _tasks(play, (ROOT / "ansible" / playbook).parent)
            for task in tasks:
                command = task.get("ansible.builtin.command") or task.get("ansible.builtin.shell")
                text = command.get("cmd", "") if isinstance(command, dict) else str(command or "")
                if text.strip().startswith("argocd "):
                    assert play["hosts"] in installed, f"{playbook}: {task['name']}"
                    calls += 1
            for task in tasks:
                download = task.get("ansible.builtin.get_url") or {}
                if download.get("dest") == "/usr/local/bin/argocd":
                    assert download["checksum"].startswith("sha256:")
                    assert "{{ argocd_version }}" in play["vars"]["argocd_release"]
                    installed.add(play["hosts"])
    assert calls >= 4 and installed == {"node1"}


@pytest.mark.slow
def test_ansible_lint_production_profile() -> None:
    done = subprocess.run(
        [_tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor"],
        cwd=ROOT / "ansible",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- Argo WorkflowTemplates --------------------------------------------------------------------
def _scripts() -> list[tuple[str, str, str]]:
    found = []
    for name in WORKFLOWS:
        for template in _workflow(name)["spec"]["templates"]:
            if "script" in template:
                script = template["script"]
                found.append((f"{name}/{template['name']}", script["command"][0], script["source"]))
    return found


def _shellcheck(shell: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("shellcheck"), "--shell", shell, "--severity", "style", "-"],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("where", "shell", "source"), _scripts(), ids=lambda v: str(v)[:40])
def test_workflow_scripts_pass_shellcheck(where: str, shell: str, source: str) -> None:
    done = _shellcheck(shell, source)
    assert done.returncode == 0, f"{where}:\n{done.stdout}"


def test_shellcheck_catches_the_write_ups_missing_dollar() -> None:
    """The original read the literal string "EVAL_RESPONSE", so the version was never found."""
    seed = (
        'EVAL_RESPONSE=$(curl -f -s -X GET "http://eval:8080/get-version?run_id=${RUN_ID}")\n'
        "VERSION=$(echo \"EVAL_RESPONSE\" | jq -r '.new_model_version // empty')\n"
        'echo -n "$VERSION"\n'
    )
    done = _shellcheck("sh", seed)
    assert done.returncode != 0
    assert "SC2034" in done.stdout and "EVAL_RESPONSE" in done.stdout


def test_the_training_poll_is_bounded() -> None:
    train = next(t for t in _workflow("train-model")["spec"]["templates"] if t["name"] == "train")
    source = train["script"]["source"]
    assert "while true" not in source and "DEADLINE" in source


def test_templates_that_trigger_others_pass_only_declared_parameters() -> None:
    declared = {
        name: {p["name"] for p in _workflow(name)["spec"]["arguments"]["parameters"]}
        for name in WORKFLOWS
    }
    links = 0
    for name in WORKFLOWS:
        for template in _workflow(name)["spec"]["templates"]:
            manifest = template.get("resource", {}).get("manifest")
            if not manifest:
                continue
            child = yaml.safe_load(manifest)
            target = child["spec"]["workflowTemplateRef"]["name"]
            assert target in declared, f"{name} triggers unknown template {target}"
            passed = {p["name"] for p in child["spec"]["arguments"]["parameters"]}
            assert passed <= declared[target], f"{name} -> {target}: {passed - declared[target]}"
            required = {
                p["name"]
                for p in _workflow(target)["spec"]["arguments"]["parameters"]
                if "value" not in p
            }
            assert required <= passed, f"{name} -> {target} misses {required - passed}"
            links += 1
    assert links >= 4


def test_workflow_stages_are_the_cli_stages() -> None:
    carried = []
    for name in WORKFLOWS:
        doc = _workflow(name)
        assert doc["kind"] == "WorkflowTemplate" and doc["metadata"]["name"] == name
        carried += doc["metadata"]["annotations"]["mlops-workshop/stages"].split(",")
    assert ["platform", *carried, "cleanup"] == PIPELINE.stage_names()


# -- Kubernetes --------------------------------------------------------------------------------
def test_every_environment_and_the_platform_have_manifests() -> None:
    folders = {p.parent.name for p in (ROOT / "k8s").rglob("kustomization.yaml")}
    assert {"platform", "staging", "canary", "production"} <= folders
    kinds = {doc["kind"] for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text())}
    assert {"Deployment", "Service", "PersistentVolumeClaim", "Job"} <= kinds


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One kubernetes-validate call over every manifest and a broken one: (broken, log)."""
    broken = tmp_path_factory.mktemp("k8s") / "broken.yaml"
    broken.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n"
    )
    done = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, "kubernetes-validate let the broken manifest through"
    return broken, done.stdout + done.stderr


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_manifests_pass_kubernetes_validate(manifest: Path, validated: tuple[Path, str]) -> None:
    lines = [line for line in validated[1].splitlines() if f" {manifest} " in line]
    assert lines and all(" passed for resource " in line for line in lines), validated[1]


def test_the_cluster_canary_takes_the_same_share_as_the_local_router() -> None:
    """ingress-nginx canary: canary's Ingress matches production's host and path and carries
    canary-weight, the percentage the local router sends (DEFAULT_WEIGHT)."""
    from mlops_helpers.continuous_x.registry import DEFAULT_WEIGHT

    def ingress(env: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((ROOT / "k8s" / env / "ingress.yaml").read_text())
        assert (
            "ingress.yaml"
            in yaml.safe_load((ROOT / "k8s" / env / "kustomization.yaml").read_text())["resources"]
        )
        return doc

    production, canary = ingress("production"), ingress("canary")
    notes = canary["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/canary"] == "true"
    assert int(notes["nginx.ingress.kubernetes.io/canary-weight"]) == round(DEFAULT_WEIGHT * 100)
    assert not (production["metadata"].get("annotations") or {})
    assert production["spec"]["rules"] == canary["spec"]["rules"]
    assert production["spec"]["ingressClassName"] == canary["spec"]["ingressClassName"] == "nginx"
    addons = yaml.safe_load(
        (
            ROOT
            / "ansible"
            / "k8s"
            / "inventory"
            / "mycluster"
            / "group_vars"
            / "k8s_cluster"
            / "addons.yml"
        ).read_text()
    )
    assert addons["ingress_nginx_enabled"] is True
    opened = next(b for b in _terraform()["variable"] if "open_ports" in b)
    assert 80 in opened["open_ports"]["default"]


def test_kubernetes_validate_refuses_a_broken_manifest(validated: tuple[Path, str]) -> None:
    broken, log = validated
    errors = [line for line in log.splitlines() if line.startswith("ERROR")]
    assert errors and all(str(broken) in line for line in errors), log
    assert "spec.replicas: 'two' is not of type 'integer'" in log


def test_node_ports_are_distinct_and_opened_by_terraform() -> None:
    from mlops_helpers.continuous_x.chameleon import NODE_PORTS

    assert len(set(NODE_PORTS.values())) == len(NODE_PORTS)
    opened = next(b for b in _terraform()["variable"] if "open_ports" in b)
    assert set(NODE_PORTS.values()) <= set(opened["open_ports"]["default"])
    text = "\n".join(p.read_text() for p in (ROOT / "k8s").rglob("*.yaml"))
    for port in NODE_PORTS.values():
        assert str(port) in text, port


# -- the local MLflow tracking server ----------------------------------------------------------
# importing MLflow's CLI warns about a type hint inside MLflow itself
@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred:UserWarning")
def test_the_mlflow_worker_starts_as_mlflow_server_would_start_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_mlflow_server skips the ``mlflow server`` launcher process and starts its uvicorn
    worker itself: the command and environment must be the ones ``mlflow server`` (run here
    with the worker's start recorded instead of made) would give it."""
    import os
    import signal

    import mlflow.server
    from click.testing import CliRunner
    from mlflow.cli import cli

    from mlops_helpers.mlflow_server import SERVER_ENV, worker_argv, worker_env
    from mlops_helpers.mlflow_store import seed_store

    class Recorded:  # the worker the launcher would have started; it ends at once
        pid = 0

        def poll(self) -> int:
            return 0

        def wait(self) -> int:
            return 0

    started: dict[str, Any] = {}

    def record(cmd: list[str], extra_env: dict[str, str], **_: Any) -> Recorded:
        started.update(
            cmd=cmd,
            env={**extra_env, "MLFLOW_ENABLE_WORKSPACES": os.environ["MLFLOW_ENABLE_WORKSPACES"]},
        )
        return Recorded()

    monkeypatch.setattr(mlflow.server, "_exec_cmd", record)
    for name, value in SERVER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_ENABLE_WORKSPACES", raising=False)  # the launcher sets it
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    db, artifacts = tmp_path / "mlflow.db", tmp_path / "artifacts"
    seed_store(db)
    uri = f"sqlite:///{db}"
    try:
        done = CliRunner().invoke(
            cli,
            [
                "server",
                "--backend-store-uri",
                uri,
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                "5123",
                "--workers",
                "1",
            ],
        )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert done.exit_code == 0, done.output
    ours = worker_env(uri, artifacts)
    assert started["env"].keys() == ours.keys()
    del started["env"]["_MLFLOW_SERVER_BOOT_ID"], ours["_MLFLOW_SERVER_BOOT_ID"]  # per start
    assert started["env"] == ours
    assert started["cmd"] == worker_argv("127.0.0.1", "5123")
