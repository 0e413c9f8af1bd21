"""Recording stand-in for the external CLIs that are not on this machine: ``terraform``,
``ansible-playbook``, ``argo`` and ``kubectl`` (installed on PATH under those names).

Each call appends its argv, working directory and the environment that matters (KUBECONFIG,
GITOPS_REPO, whether OpenStack credentials were passed) to ``$FAKE_LOG``. Where a real
tool's effect is needed by the next step, it does that effect the way the real tool would:
``terraform apply`` creates the security group, its rules and the three servers in the
OpenStack double through its HTTP API (find-or-create by name, as Terraform's state makes a
second apply a no-op; the nodes boot on the flavor main.tf names, and an instance Nova puts in
ERROR fails the apply, as terraform-provider-openstack waits for ACTIVE) and ``destroy``
deletes them; the Kubespray playbook writes the
kubeconfig it fetches from the control node; ``argo`` submits and gets workflows as argo v3
does (see its section below).
``$FAKE_FAIL`` (a substring of "tool arg1 arg2") makes a call fail.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

TOOL = Path(sys.argv[0]).name
ARGS = sys.argv[1:]
OPEN_PORTS = (22, 80, 30800, 30909, 30808, 30081, 30080, 30082, 30901)
NODES = {"node1": "192.168.1.11", "node2": "192.168.1.12", "node3": "192.168.1.13"}


def record() -> None:
    entry = {
        "tool": TOOL,
        "argv": ARGS,
        "cwd": os.getcwd(),
        "kubeconfig": os.environ.get("KUBECONFIG"),
        "gitops": os.environ.get("GITOPS_REPO"),
        "os_credentials": bool(os.environ.get("OS_APPLICATION_CREDENTIAL_SECRET")),
    }
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")


def variables() -> dict[str, str]:
    found = {}
    for arg in ARGS:
        if arg.startswith("-var="):
            key, _, value = arg.removeprefix("-var=").partition("=")
            found[key] = value
    return found


def extra_vars() -> dict[str, str]:
    found = {}
    for flag, value in zip(ARGS, ARGS[1:], strict=False):
        if flag == "-e" and "=" in value:
            key, _, val = value.partition("=")
            found[key] = val
    return found


# -- the OpenStack API, as terraform-provider-openstack calls it ----------------------------
class Cloud:
    def __init__(self) -> None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {
                        "id": os.environ["OS_APPLICATION_CREDENTIAL_ID"],
                        "secret": os.environ["OS_APPLICATION_CREDENTIAL_SECRET"],
                    },
                }
            }
        }
        request = urllib.request.Request(
            f"{os.environ['OS_AUTH_URL'].rstrip('/')}/auth/tokens",
            method="POST",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            self.token = resp.headers["X-Subject-Token"]
            catalog = json.loads(resp.read())["token"]["catalog"]
        self.urls = {entry["type"]: entry["endpoints"][0]["url"] for entry in catalog}

    def call(self, method: str, service: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.urls[service]}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-Auth-Token": self.token},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


class ToolError(Exception):
    """What the real tool prints on stderr before it exits 1."""


def instance_flavor(values: dict[str, str]) -> str:
    """The nodes' ``flavor_name`` as main.tf (python-hcl2) gives it, ``${var.x}`` filled in."""
    import re

    import hcl2

    with open("main.tf") as handle:
        config = hcl2.load(handle)
    for block in config["resource"]:
        for kind, bodies in block.items():
            if kind.strip('"') == "openstack_compute_instance_v2":
                expression = str(next(iter(bodies.values()))["flavor_name"]).strip('"')
                return re.sub(r"\$\{var\.(\w+)\}", lambda m: values.get(m.group(1), ""), expression)
    raise ToolError("Error: main.tf has no openstack_compute_instance_v2")


def apply(cloud: Cloud, values: dict[str, str]) -> None:
    suffix = values["suffix"]
    group_name = f"allow-mlops-{suffix}"
    groups = cloud.call("GET", "network", f"/v2.0/security-groups?name={group_name}")
    if groups["security_groups"]:
        group = groups["security_groups"][0]
    else:
        group = cloud.call(
            "POST",
            "network",
            "/v2.0/security-groups",
            {
                "security_group": {
                    "name": group_name,
                    "description": "SSH, the apps and the platform UIs",
                }
            },
        )["security_group"]
        rules = [(port, values.get("allowed_cidr", "0.0.0.0/0")) for port in OPEN_PORTS]
        rules.append((6443, values["api_allowed_cidr"]))
        for port, cidr in rules:
            cloud.call(
                "POST",
                "network",
                "/v2.0/security-group-rules",
                {
                    "security_group_rule": {
                        "security_group_id": group["id"],
                        "direction": "ingress",
                        "ethertype": "IPv4",
                        "protocol": "tcp",
                        "port_range_min": port,
                        "port_range_max": port,
                        "remote_ip_prefix": cidr,
                    }
                },
            )
    flavor_name = instance_flavor(values)
    flavors = cloud.call("GET", "compute", "/flavors")["flavors"]
    flavor = next((f["id"] for f in flavors if f["name"] == flavor_name), None)
    if flavor is None:
        raise ToolError(
            f"Error: Error resolving flavor: Unable to find flavor with name {flavor_name}"
        )
    for node in NODES:
        name = f"{node}-mlops-{suffix}"
        if cloud.call("GET", "compute", f"/servers?name=^{name}$")["servers"]:
            continue
        created = cloud.call(
            "POST",
            "compute",
            "/servers",
            {
                "server": {
                    "name": name,
                    "flavorRef": flavor,
                    "imageRef": values["image"],
                    "key_name": values["key"],
                    "security_groups": [{"name": group_name}],
                },
            },
        )["server"]
        # the provider waits for ACTIVE and fails on ERROR with the instance's fault
        server = cloud.call("GET", "compute", f"/servers/{created['id']}")["server"]
        if server["status"] == "ERROR":
            raise ToolError(
                f"Error: Error waiting for instance ({created['id']}) to become ready: "
                f"{server.get('fault', {}).get('message', 'ERROR')}"
            )
    fips = cloud.call("GET", "network", "/v2.0/floatingips")["floatingips"]
    fip = next(f for f in fips if f["floating_ip_address"] == values["floating_ip"])
    cloud.call(
        "PUT",
        "network",
        f"/v2.0/floatingips/{fip['id']}",
        {"floatingip": {"port_id": f"sharednet-node1-mlops-{suffix}"}},
    )
    Path("terraform.tfstate").write_text(json.dumps({"version": 4, "variables": values}))


def destroy(cloud: Cloud, values: dict[str, str]) -> None:
    suffix = values["suffix"]
    for server in cloud.call("GET", "compute", f"/servers?name=-mlops-{suffix}$")["servers"]:
        cloud.call("DELETE", "compute", f"/servers/{server['id']}")
    groups = cloud.call("GET", "network", f"/v2.0/security-groups?name=allow-mlops-{suffix}")
    for group in groups["security_groups"]:
        cloud.call("DELETE", "network", f"/v2.0/security-groups/{group['id']}")
    for fip in cloud.call("GET", "network", "/v2.0/floatingips")["floatingips"]:
        if fip["port_id"] == f"sharednet-node1-mlops-{suffix}":
            cloud.call(
                "PUT",
                "network",
                f"/v2.0/floatingips/{fip['id']}",
                {"floatingip": {"port_id": None}},
            )
    Path("terraform.tfstate").unlink(missing_ok=True)


def terraform() -> None:
    command = ARGS[0]
    if command == "init":
        Path(".terraform").mkdir(exist_ok=True)
    elif command in ("apply", "destroy"):
        (apply if command == "apply" else destroy)(Cloud(), variables())
    elif command == "output":
        state = json.loads(Path("terraform.tfstate").read_text())
        print(
            json.dumps(
                {
                    "floating_ip_out": {"value": state["variables"]["floating_ip"]},
                    "private_ips": {"value": NODES},
                }
            )
        )


def ansible_playbook() -> None:
    values = extra_vars()
    if ARGS[-1].endswith("kubespray_hook.yml") and "kubeconfig_path" in values:
        # the play's fetch task: admin.conf from node1, server rewritten to the public address
        Path(values["kubeconfig_path"]).write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster.local\n  cluster:\n"
            f"    server: https://{values['floating_ip']}:6443\n"
        )


# -- argo, as the v3 CLI behaves (see argo()) ------------------------------------------------
STEP_RESULTS = {"evaluate": "3", "fetch": "v3-0123456789ab"}  # and train: $FAKE_RUN_ID
FINISHED = "2026-01-01T00:00:10Z"


def _store() -> Path:
    folder = Path(os.environ["FAKE_LOG"]).with_name("argo-workflows")
    folder.mkdir(exist_ok=True)
    return folder


def _flag(name: str, short: str | None = None) -> str | None:
    for i, arg in enumerate(ARGS[:-1]):
        if arg in (name, short):
            return ARGS[i + 1]
    return None


def _when(expression: str, values: dict[str, str]) -> bool:
    """Argo's ``when`` for the comparisons the templates use: 'a' == 'b', 'a' != 'b'."""
    for key, value in values.items():
        expression = expression.replace("{{" + key + "}}", value)
    for op in ("==", "!="):
        left, found, right = expression.partition(op)
        if found:
            equal = left.strip().strip("'") == right.strip().strip("'")
            return equal if op == "==" else not equal
    return True


def _run_workflow(
    name: str, template: dict[str, Any], parameters: dict[str, str]
) -> dict[str, Any]:
    """The status the controller would write: a Steps node, one node per step."""
    import hashlib

    spec = template["spec"]
    entry = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])
    if "steps" not in entry:  # one script or container: the workflow is that one pod
        failed = entry["name"] == os.environ.get("FAKE_WORKFLOW_FAIL")
        root = {
            "id": name,
            "name": name,
            "displayName": name,
            "type": "Pod",
            "templateName": entry["name"],
            "phase": "Failed" if failed else "Succeeded",
            "startedAt": FINISHED,
            "finishedAt": FINISHED,
            "outputs": {"exitCode": "1" if failed else "0"},
        }
        if failed:
            root["message"] = "Error (exit code 1)"
        status = {"phase": root["phase"], "startedAt": FINISHED, "finishedAt": FINISHED}
        return {**status, "nodes": {name: root}, **({"message": root["message"]} if failed else {})}
    steps = entry["steps"]
    values = {f"workflow.parameters.{k}": v for k, v in parameters.items()}
    nodes: dict[str, Any] = {}
    children = []
    failing = os.environ.get("FAKE_WORKFLOW_FAIL", "")
    phase, message = "Succeeded", ""
    for index, group in enumerate(steps):
        for step in group:
            node_id = f"{name}-{int(hashlib.sha1(step['name'].encode()).hexdigest()[:8], 16)}"
            children.append(node_id)
            node: dict[str, Any] = {
                "id": node_id,
                "name": f"{name}[{index}].{step['name']}",
                "displayName": step["name"],
                "type": "Pod",
                "templateName": step["template"],
                "phase": "Succeeded",
                "startedAt": FINISHED,
                "finishedAt": FINISHED,
                "outputs": {"exitCode": "0"},
            }
            if phase != "Succeeded" or not _when(step.get("when", ""), values):
                node.update(type="Skipped", phase="Skipped", message="when evaluated false")
                del node["outputs"]
            elif step["name"] == failing:
                node.update(phase="Failed", message="Error (exit code 1)")
                node["outputs"] = {"exitCode": "1"}
                phase, message = "Failed", f"child '{node_id}' failed"
            elif step["name"] in (*STEP_RESULTS, "train"):
                result = STEP_RESULTS.get(step["name"]) or os.environ.get("FAKE_RUN_ID", "run0")
                node["outputs"]["result"] = result
                values[f"steps.{step['name']}.outputs.result"] = result
            nodes[node_id] = node
    nodes[name] = {
        "id": name,
        "name": name,
        "displayName": name,
        "type": "Steps",
        "templateName": spec["entrypoint"],
        "phase": phase,
        "children": children,
    }
    status = {"phase": phase, "startedAt": FINISHED, "finishedAt": FINISHED, "nodes": nodes}
    if message:
        status["message"] = message
    return status


def argo() -> int:
    """``argo submit`` and ``argo get`` as argo v3 behaves.

    argo-workflows v3.6 (module github.com/argoproj/argo-workflows/v3), commit e1271ca5598658:
    - cmd/argo/commands/submit.go, submitWorkflowFromResource: the server's SubmitWorkflow answer
      (the workflow as created: no phase, no nodes) is printed at once with printWorkflow, then
      common.WaitWatchOrLog runs;
    - cmd/argo/commands/common/submit.go, WaitWatchOrLog: --wait calls WaitWorkflows with
      quiet = (output is not "" or "wide"), so with -o json nothing more is printed;
    - cmd/argo/commands/common/wait.go, WaitWorkflows/waitOnOne: when the workflow has finished,
      phase Failed or Error makes the CLI os.Exit(1);
    - cmd/argo/commands/get.go: ``argo get NAME -o json`` prints the workflow with its status
      (phase, message, nodes with each step's outputs.result).
    The "cluster" runs a workflow at submit: it walks the WorkflowTemplate's entrypoint steps (read
    from workflows/ in the working directory, as the templates applied to the cluster), gives the
    script steps the results in STEP_RESULTS, skips steps whose ``when`` is false, and fails
    the step named by $FAKE_WORKFLOW_FAIL. Workflows are kept as JSON files next to $FAKE_LOG.
    """
    import random
    import string

    import yaml

    namespace = _flag("-n", "--namespace") or "default"
    if ARGS[0] == "get":
        path = _store() / f"{ARGS[1]}.json"
        if not path.exists():
            print(
                f'rpc error: code = NotFound desc = workflows.argoproj.io "{ARGS[1]}" not found',
                file=sys.stderr,
            )
            return 1
        print(json.dumps(json.loads(path.read_text()), indent=4))
        return 0
    if ARGS[0] != "submit":
        return 0
    kind, _, template_name = (_flag("--from") or "").partition("/")
    source = Path("workflows") / f"{template_name}.yaml"
    if kind != "workflowtemplate" or not source.exists():
        print(
            "Failed to submit workflow: rpc error: code = NotFound desc = "
            f'workflowtemplates.argoproj.io "{template_name}" not found',
            file=sys.stderr,
        )
        return 1
    template = yaml.safe_load(source.read_text())
    given = dict(
        value.split("=", 1) for flag, value in zip(ARGS, ARGS[1:], strict=False) if flag == "-p"
    )
    parameters = {}
    for declared in template["spec"]["arguments"]["parameters"]:
        value = given.get(declared["name"], declared.get("value"))
        if value is None:
            print(
                "Failed to submit workflow: rpc error: code = InvalidArgument desc = "
                f"spec.arguments.{declared['name']}.value is required",
                file=sys.stderr,
            )
            return 1
        parameters[declared["name"]] = str(value)
    name = (
        template_name + "-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    )
    created = {
        "metadata": {
            "name": name,
            "generateName": f"{template_name}-",
            "namespace": namespace,
            "uid": "0f6c3f0e-8a51-4cb4-9d0c-5c1e7c0a9b11",
            "resourceVersion": "1",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"workflows.argoproj.io/workflow-template": template_name},
        },
        "spec": {
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in given.items()]},
            "workflowTemplateRef": {"name": template_name},
        },
        "status": {},
    }
    output = _flag("-o", "--output") or ""
    print(json.dumps(created, indent=4) if output == "json" else f"Name: {name}")
    finished = {**created, "status": _run_workflow(name, template, parameters)}
    (_store() / f"{name}.json").write_text(json.dumps(finished))
    phase = finished["status"]["phase"]
    if "--wait" in ARGS or "-w" in ARGS:
        if output in ("", "wide"):
            print(f"{name} {phase} at {FINISHED}")
        if phase in ("Failed", "Error"):
            return 1
    return 0


def main() -> int:
    record()
    failing = os.environ.get("FAKE_FAIL")
    if failing and failing in " ".join([TOOL, *ARGS[:2]]):
        print("Error: quota exceeded", file=sys.stderr)
        return 1
    import urllib.error

    try:
        if TOOL == "argo":
            return argo()
        {
            "terraform": terraform,
            "ansible-playbook": ansible_playbook,
            "kubectl": lambda: None,
        }[TOOL]()
    except urllib.error.HTTPError as err:  # as the provider reports an API error
        print(f"Error: {err.url}: {err.code} {err.read().decode()}", file=sys.stderr)
        return 1
    except ToolError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
