"""Chameleon backend: a lease with python-chi, VMs with Terraform, Kubernetes and the Argo
tools with Ansible, and the lifecycle's build and deploy steps as Argo Workflows.

The training and evaluation calls are the shared HTTP ones (``ServicesBackend``), made to
the services' NodePorts on the floating IP. Everything cloud-side is registered with the
tracker before it is created, so ``cleanup`` (or any failure) destroys the VMs and ends the
lease even when provisioning stopped half way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from string import Template
from typing import Any

from mlops_helpers.continuous_x.base import ServicesBackend
from mlops_helpers.continuous_x.registry import REGISTRY, scenario_dir
from mlops_helpers.credentials import CLOUD_BACKENDS
from mlops_helpers.errors import BackendUnavailable, ConfigError, StageError
from mlops_helpers.extras import require
from mlops_helpers.resources import teardown_handler

MODULE = "mlops_helpers.continuous_x.chameleon"
TOOLS = ("terraform", "ansible-playbook", "argo", "kubectl")
# NodePorts of k8s/ (platform services and the three app environments)
NODE_PORTS = {"mlflow": 30800, "training": 30909, "evaluation": 30808,
              "staging": 30081, "canary": 30080, "production": 30082}
# playbooks in the order the write-up runs them, relative to ansible/
PLAYBOOKS = ("general/hello_host.yml", "pre_k8s/pre_k8s_configure.yml",
             "k8s/kubespray_hook.yml", "argocd/argocd_add_platform.yml",
             "argocd/argocd_add_staging.yml", "argocd/argocd_add_canary.yml",
             "argocd/argocd_add_prod.yml", "argocd/workflow_templates_apply.yml")


def run_tool(argv: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None,
             ) -> str:
    """Run a CLI, return its stdout; a failure names the command and shows its last output."""
    import os

    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        raise StageError(f"{' '.join(argv[:3])} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise StageError(f"{' '.join(argv[:3])} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


class ChiSession:
    """The python-chi calls this backend makes, in one place (tests replace ``chi``)."""

    def __init__(self, site: str, project: str | None) -> None:
        require("chi", "chameleon")
        from chi import context

        context.version = "1.0"
        context.use_site(site)
        if project:
            context.use_project(project)

    def lease(self, name: str, flavor: str, count: int, hours: int, timeout: int) -> dict:
        """Find or create the lease of ``count`` VMs of ``flavor`` and a floating IP."""
        from datetime import timedelta

        from chi import lease as chi_lease

        lease = chi_lease.Lease(name, duration=timedelta(hours=hours))
        lease.add_flavor_reservation(name=flavor, amount=count)
        lease.add_fip_reservation(amount=1)
        lease.submit(wait_for_active=True, wait_timeout=timeout, idempotent=True)
        reservation = next(iter(lease.flavor_reservations), {}).get("id")
        if not reservation:
            raise StageError(f"lease {name} is {lease.status} but holds no flavor reservation")
        return {"id": lease.id, "reservation_id": reservation, "status": lease.status}

    def delete_lease(self, name: str) -> None:
        from chi import lease as chi_lease

        found = chi_lease.get_lease(name)
        if found is not None:
            found.delete()

    def wait_for_ssh(self, address: str, timeout: int) -> None:
        from chi import server

        server.wait_for_tcp(address, 22, timeout=timeout)


def _session(params: dict[str, Any]) -> ChiSession:
    return ChiSession(params["site"], params.get("project"))


@REGISTRY.register("chameleon")
class ChameleonBackend(ServicesBackend):
    poll_interval = 10.0

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        cloud = next(b for b in CLOUD_BACKENDS if b.name == "chameleon")
        if not cloud.credentials_present(s) or not s.has("ssh_key_name"):
            raise ConfigError(f"the chameleon backend needs {cloud.credential_names()} and "
                              f"SSH_KEY_NAME (see the README's cloud settings)")
        absent = [tool for tool in TOOLS if shutil.which(tool) is None]
        if absent:
            raise BackendUnavailable(f"the chameleon backend runs {', '.join(TOOLS)}; "
                                     f"not installed here: {', '.join(absent)}")
        self.site = str(s.get("chi_site", "KVM@TACC"))
        self.project = s.get("os_project_name")
        self.suffix = s.name("mlops").removeprefix("mlops-") or "attendee"
        key = s.secret("ssh_key_name")  # a key pair's name, masked only because of its name
        self.tf_vars = {"suffix": self.suffix, "key": key.reveal() if key else "",
                        "flavor": str(s.get("chi_flavor", "m1.large")),
                        "image": str(s.get("chi_image", "CC-Ubuntu24.04"))}
        self.hours = int(s.get("lease_hours", 8, int))
        self.timeout = float(s.get("provision_timeout", 3600, float))

    @property
    def tf_dir(self) -> Path:
        """A copy of tf/kvm per attendee: Terraform keeps its state next to the files."""
        return self.ctx.run_dir / "terraform"

    @property
    def inventory(self) -> Path:
        return self.ctx.run_dir / "inventory.yml"

    @property
    def kubespray_inventory(self) -> Path:
        return self.ctx.run_dir / "kubespray-hosts.yaml"

    @property
    def ansible_dir(self) -> Path:
        return scenario_dir() / "ansible"

    def plan(self) -> str:
        """What the platform stage will start (and bill), said before it starts it."""
        return (f"Chameleon {self.site}: a {self.hours} h lease of 3 x {self.tf_vars['flavor']} "
                f"VMs ({self.tf_vars['image']}) and 1 floating IP, names ending "
                f"'{self.suffix}'")

    def _tf_args(self, reservation_id: str) -> list[str]:
        values = {**self.tf_vars, "reservation_id": reservation_id}
        return [f"-var={key}={value}" for key, value in values.items()]

    def start_platform(self) -> dict[str, Any]:
        self.ctx.say(self.plan())
        chi = ChiSession(self.site, self.project)
        lease_name = f"continuous-x-{self.suffix}"
        params = {"site": self.site, "project": self.project}
        self.ctx.tracker.add("chameleon_lease", lease_name, module=MODULE, lease=lease_name,
                             **params)
        lease = chi.lease(lease_name, self.tf_vars["flavor"], 3, self.hours,
                          timeout=int(self.timeout))
        args = self._tf_args(lease["reservation_id"])
        self.ctx.tracker.add("chameleon_terraform", self.suffix, module=MODULE,
                             tf_dir=str(self.tf_dir), args=args, timeout=self.timeout)
        shutil.copytree(scenario_dir() / "tf" / "kvm", self.tf_dir, dirs_exist_ok=True)
        run_tool(["terraform", "init", "-input=false"], self.tf_dir, self.timeout)
        run_tool(["terraform", "apply", "-auto-approve", "-input=false", *args], self.tf_dir,
                 self.timeout)
        outputs = json.loads(run_tool(["terraform", "output", "-json"], self.tf_dir, 120))
        address = outputs["floating_ip_out"]["value"]
        nodes = outputs["private_ips"]["value"]
        self.render_inventories(address, nodes)
        chi.wait_for_ssh(address, int(self.timeout))
        env = {"MLOPS_ATTENDEE": self.suffix, "GITOPS_REPO": self.gitops_repo(),
               "ANSIBLE_CONFIG": str(self.ansible_dir / "ansible.cfg")}
        for playbook in PLAYBOOKS:
            self.ctx.say(f"ansible-playbook {playbook}")
            run_tool(["ansible-playbook", "-i", str(self.inventory), "-e",
                      f"kubespray_inventory={self.kubespray_inventory}", playbook],
                     self.ansible_dir, self.timeout, env=env)
        urls = {name: f"http://{address}:{NODE_PORTS[name]}"
                for name in ("mlflow", "training", "evaluation")}
        return {"urls": urls, "floating_ip": address, "lease": lease}

    def gitops_repo(self) -> str:
        repo = self.ctx.settings.get("gitops_repo")
        if not repo:
            raise ConfigError("set gitops_repo (MLOPS_GITOPS_REPO) to the git URL Argo CD "
                              "syncs from: your fork of this repository")
        return str(repo)

    def render_inventories(self, floating_ip: str, nodes: dict[str, str]) -> None:
        """inventory.yml and Kubespray's hosts.yaml from their templates, in the run dir."""
        values = {"floating_ip": floating_ip, **nodes}
        kubespray = self.ansible_dir / "k8s" / "inventory" / "mycluster" / "hosts.yaml.tmpl"
        for template, target in ((self.ansible_dir / "inventory.yml.tmpl", self.inventory),
                                 (kubespray, self.kubespray_inventory)):
            target.write_text(Template(template.read_text()).substitute(values))

    # -- the lifecycle's cluster steps, as Argo Workflows ------------------------------------
    def submit(self, template: str, **parameters: str) -> dict[str, Any]:
        """Submit a WorkflowTemplate, wait for it (bounded by Argo) and return the workflow."""
        argv = ["argo", "submit", "-n", "argo", "--from", f"workflowtemplate/{template}",
                "--wait", "-o", "json"]
        for key, value in parameters.items():
            argv += ["-p", f"{key}={value}"]
        workflow: dict[str, Any] = json.loads(run_tool(argv, scenario_dir(), self.timeout))
        phase = workflow.get("status", {}).get("phase")
        if phase != "Succeeded":
            raise StageError(f"workflow {template} ended {phase}: "
                             f"{workflow.get('status', {}).get('message', 'no message')}")
        return workflow

    @staticmethod
    def step_result(workflow: dict[str, Any], step: str) -> str:
        for node in workflow.get("status", {}).get("nodes", {}).values():
            if node.get("displayName") == step:
                return str(node.get("outputs", {}).get("result", ""))
        raise StageError(f"workflow {workflow.get('metadata', {}).get('name')} has no step "
                         f"{step}")

    def build(self, model_name: str, version: str) -> dict[str, Any]:
        workflow = self.submit("build-container-image", **{"model-version": version,
                                                            "deploy": "false"})
        tag = self.step_result(workflow, "fetch")
        return {"tag": tag, "digest": tag.rsplit("-", 1)[-1], "model_version": version,
                "model_name": model_name, "workflow": workflow["metadata"]["name"]}

    def deploy(self, environment: str, bundle: dict[str, Any]) -> dict[str, Any]:
        self.submit("deploy-container-image", environment=environment,
                    **{"image-tag": bundle["tag"], "model-version": bundle["model_version"]})
        address = (self.ctx.state.get("platform") or {}).get("floating_ip")
        return {"environment": environment, "tag": bundle["tag"],
                "model_version": bundle["model_version"],
                "url": f"http://{address}:{NODE_PORTS[environment]}", "server": None}


@teardown_handler("chameleon_terraform")
def _destroy_vms(params: dict[str, Any]) -> None:
    """Destroy whatever apply created, even a half-finished apply (its state is partial)."""
    tf_dir = Path(params["tf_dir"])
    if (tf_dir / ".terraform").is_dir() or (tf_dir / "terraform.tfstate").is_file():
        run_tool(["terraform", "destroy", "-auto-approve", "-input=false", *params["args"]],
                 tf_dir, float(params["timeout"]))


@teardown_handler("chameleon_lease")
def _end_lease(params: dict[str, Any]) -> None:
    _session(params).delete_lease(params["lease"])
