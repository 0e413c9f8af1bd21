"""Recording stand-in for the external CLIs that are not on this machine: ``terraform``,
``ansible-playbook``, ``argo`` and ``kubectl`` (installed on PATH under those names).

Each call appends its argv, working directory and the environment that matters (KUBECONFIG,
GITOPS_REPO, whether OpenStack credentials were passed) to ``$FAKE_LOG``. Where a real
tool's effect is needed by the next step, it does that effect the way the real tool would:
``terraform apply`` creates the security group, its rules and the three servers in the
OpenStack double through its HTTP API (find-or-create by name, as Terraform's state makes a
second apply a no-op) and ``destroy`` deletes them; the Kubespray playbook writes the
kubeconfig it fetches from the control node; ``argo submit`` prints a finished workflow.
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
    flavors = cloud.call("GET", "compute", "/flavors")["flavors"]
    flavor = next(f["id"] for f in flavors if f["name"] == values["flavor"])
    for node in NODES:
        name = f"{node}-mlops-{suffix}"
        if cloud.call("GET", "compute", f"/servers?name=^{name}$")["servers"]:
            continue
        cloud.call(
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
                "os:scheduler_hints": {"reservation": values["reservation_id"]},
            },
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


def argo() -> None:
    if ARGS[0] != "submit":
        return
    template = ARGS[ARGS.index("--from") + 1].split("/")[1]
    results = {
        "fetch": "v3-0123456789ab",
        "train": os.environ.get("FAKE_RUN_ID", "run0"),
        "evaluate": "3",
    }
    nodes = {
        f"n{i}": {"displayName": step, "outputs": {"result": result}}
        for i, (step, result) in enumerate(results.items())
    }
    print(
        json.dumps(
            {
                "metadata": {"name": f"{template}-x1"},
                "status": {"phase": "Succeeded", "nodes": nodes},
            }
        )
    )


def main() -> int:
    record()
    failing = os.environ.get("FAKE_FAIL")
    if failing and failing in " ".join([TOOL, *ARGS[:2]]):
        print("Error: quota exceeded", file=sys.stderr)
        return 1
    import urllib.error

    try:
        {
            "terraform": terraform,
            "ansible-playbook": ansible_playbook,
            "argo": argo,
            "kubectl": lambda: None,
        }[TOOL]()
    except urllib.error.HTTPError as err:  # as the provider reports an API error
        print(f"Error: {err.url}: {err.code} {err.read().decode()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
