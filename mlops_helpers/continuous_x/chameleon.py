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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from string import Template
from typing import Any

from mlops_helpers.continuous_x.base import ServicesBackend
from mlops_helpers.continuous_x.registry import REGISTRY, scenario_dir
from mlops_helpers.continuous_x.spec import CHAMELEON, SCENARIO
from mlops_helpers.errors import BackendUnavailable, ConfigError, StageError, WaitTimeout
from mlops_helpers.extras import require
from mlops_helpers.resources import teardown_handler

MODULE = "mlops_helpers.continuous_x.chameleon"
TOOLS = tuple(t.name for t in SCENARIO.backend("chameleon").tools)  # as the spec declares
# NodePorts of k8s/ (platform services and the three app environments)
NODE_PORTS = {
    "mlflow": 30800,
    "training": 30909,
    "evaluation": 30808,
    "staging": 30081,
    "canary": 30080,
    "production": 30082,
}
KUBE_API_PORT = 6443
# Kubespray release the Ansible stage checks out (a tag: the same cluster every time)
KUBESPRAY_VERSION = "v2.28.1"
# playbooks in the order the write-up runs them, relative to ansible/
PLAYBOOKS = (
    "general/hello_host.yml",
    "pre_k8s/pre_k8s_configure.yml",
    "k8s/kubespray_hook.yml",
    "argocd/argocd_add_platform.yml",
    "argocd/argocd_add_staging.yml",
    "argocd/argocd_add_canary.yml",
    "argocd/argocd_add_prod.yml",
    "argocd/workflow_templates_apply.yml",
)
KUBESPRAY_PLAYBOOK = "k8s/kubespray_hook.yml"  # also fetches the kubeconfig
# Blazar lease statuses from which it will not become ACTIVE (Blazar's lease state machine)
LEASE_ENDED = ("ERROR", "TERMINATING", "TERMINATED", "DELETING")
# an Argo workflow's phases once it has ended (argo-workflows v3 WorkflowPhase)
FINISHED_PHASES = ("Succeeded", "Failed", "Error")


def _run(
    argv: list[str],
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a CLI to its end, bounded by ``timeout``."""
    import os

    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as exc:
        raise StageError(f"{' '.join(argv[:3])} did not finish in {timeout:.0f} s") from exc


def _failed(argv: list[str], done: subprocess.CompletedProcess[str]) -> StageError:
    tail = (done.stdout + done.stderr)[-2000:]
    return StageError(f"{' '.join(argv[:3])} failed (exit {done.returncode}):\n{tail}")


def run_tool(
    argv: list[str],
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> str:
    """Run a CLI, return its stdout; a failure names the command and shows its last output."""
    done = _run(argv, cwd, timeout, env)
    if done.returncode != 0:
        raise _failed(argv, done)
    return done.stdout


class ChiSession:
    """The python-chi (1.2) calls this backend makes, in one place.

    The session is configured from the user's own openrc values (``OS_AUTH_URL`` and an
    application credential) rather than ``chi.use_site``: that call downloads the site list
    from the Chameleon web API and replaces the auth URL the user gave.
    """

    def __init__(
        self, site: str, auth_url: str, credential_id: str, credential_secret: str
    ) -> None:
        import logging

        require("chi", "chameleon")
        require("blazarclient", "chameleon")  # chi.lease imports it; the extra installs it
        from chi import context

        # python-chi's network helpers use neutronclient, which warns on every client it
        # makes; the user can do nothing about it
        logging.getLogger("neutronclient.v2_0.client").setLevel(logging.ERROR)

        context.set("auth_type", "v3applicationcredential")
        context.set("auth_url", auth_url)
        context.set("application_credential_id", credential_id)
        context.set("application_credential_secret", credential_secret)
        context.set("region_name", site)

    def find_lease(self, name: str) -> Any:
        """The lease called ``name``, or None: python-chi >= 1.0 raises when there is none."""
        from chi import lease as chi_lease
        from chi.exception import CHIValueError

        try:
            return chi_lease.get_lease(name)
        except CHIValueError:
            return None

    def lease(
        self,
        name: str,
        flavor: str,
        count: int,
        hours: int,
        timeout: float,
        interval: float,
    ) -> dict[str, Any]:
        """Find or create the lease of ``count`` VMs of ``flavor`` and one floating IP, and
        wait (bounded) until Blazar has started it: PENDING, then STARTING, then ACTIVE.

        On KVM@TACC a flavor reservation gives a reserved flavor, ``reservation:<id>``, that
        the instances must boot on (python-chi's ``Lease.get_reserved_flavors``)."""
        from datetime import timedelta

        from chi import lease as chi_lease

        from mlops_helpers.waiting import wait_until

        lease = chi_lease.Lease(name, duration=timedelta(hours=hours))
        lease.add_flavor_reservation(name=flavor, amount=count)
        lease.add_fip_reservation(amount=1)
        with _logged_errors("chi.lease") as reasons:
            try:  # python-chi's own wait polls every 5 s, unbounded by our settings
                lease.submit(wait_for_active=False, idempotent=True)
            except Exception as exc:  # python-chi logs Blazar's reason and raises without it
                raise StageError(
                    f"Blazar refused lease {name}: {'; '.join(reasons) or exc}"
                ) from exc
        status: str = wait_until(
            lambda: str(lease.status),  # the property reads the lease again from Blazar
            what=f"lease {name} to start",
            timeout=timeout,
            interval=interval,
            until=lambda found: found == "ACTIVE",
            describe=str,
            fail_if=lambda found: (
                f"Blazar reports the lease {found}" if found in LEASE_ENDED else None
            ),
        )
        reservations = [r for r in lease.flavor_reservations if r.get("id")]
        flavors = lease.get_reserved_flavors()
        addresses = lease.get_reserved_floating_ips()
        if not reservations or not flavors or not addresses:
            raise StageError(
                f"lease {name} is {status} but holds no reserved flavor or floating IP"
            )
        return {
            "id": lease.id,
            "name": name,
            "reservation_id": reservations[0]["id"],
            "reserved_flavor": flavors[0].name,
            "floating_ip": addresses[0],
            "status": status,
        }

    def delete_lease(self, name: str) -> bool:
        """End the lease if it exists; False when there was none (never created, or gone)."""
        found = self.find_lease(name)
        if found is None:
            return False
        found.delete()
        return True

    def servers(self, name_pattern: str) -> dict[str, str]:
        """Name -> status of the servers whose name matches (Nova's regex name filter)."""
        from chi.clients import nova

        return {s.name: s.status for s in nova().servers.list(search_opts={"name": name_pattern})}

    def ingress_rules(self, group: str) -> list[dict[str, Any]]:
        """The ingress rules of the security group called ``group`` (Neutron)."""
        from chi.clients import neutron

        groups = neutron().list_security_groups(name=group)["security_groups"]
        if not groups:
            raise StageError(f"security group {group} does not exist")
        return [r for r in groups[0]["security_group_rules"] if r["direction"] == "ingress"]

    def wait_for_ssh(self, address: str, port: int, timeout: int) -> None:
        from chi import server

        server.wait_for_tcp(address, port, timeout=timeout, sleep_time=1)


@contextmanager
def _logged_errors(logger: str) -> Iterator[list[str]]:
    """Collect the error messages ``logger`` emits inside the block."""
    import logging

    reasons: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            reasons.append(record.getMessage())

    handler = Collect(logging.ERROR)
    target = logging.getLogger(logger)
    target.addHandler(handler)
    try:
        yield reasons
    finally:
        target.removeHandler(handler)


def _secret() -> str:
    """The application credential's secret for a teardown in a later process: read again
    from the settings (parameters, environment, .env), never stored in resources.json."""
    from mlops_helpers.config import Settings

    secret = Settings.load("continuous_x").secret("os_application_credential_secret")
    if not secret:
        raise ConfigError(
            "cannot tear down on Chameleon: OS_APPLICATION_CREDENTIAL_SECRET is not set"
        )
    return secret.reveal()


def _session(params: dict[str, Any]) -> ChiSession:
    return ChiSession(params["site"], params["auth_url"], params["credential_id"], _secret())


@REGISTRY.register("chameleon")
class ChameleonBackend(ServicesBackend):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.poll_interval = float(s.poll_interval)  # the spec's chameleon default: 10 s
        cloud = CHAMELEON
        if not cloud.credentials_present(s) or not s.has("ssh_key_name"):
            raise ConfigError(
                f"the chameleon backend needs {cloud.credential_names()} and "
                f"SSH_KEY_NAME (see the README's cloud settings)"
            )
        absent = [tool for tool in TOOLS if shutil.which(tool) is None]
        if absent:
            raise BackendUnavailable(
                f"the chameleon backend runs {', '.join(TOOLS)}; "
                f"not installed here: {', '.join(absent)}"
            )
        self.site = str(s.chi_site)
        self.auth_url = str(s.os_auth_url)
        self.credential_id = _reveal(s.os_application_credential_id)
        self.credential_secret = _reveal(s.os_application_credential_secret)
        self.suffix = s.name("mlops").removeprefix("mlops-") or "attendee"
        key = s.secret("ssh_key_name")  # a key pair's name, masked only because of its name
        self.flavor = str(s.chi_flavor)  # reserved by the lease
        self.tf_vars = {
            "suffix": self.suffix,
            "key": key.reveal() if key else "",
            "image": str(s.chi_image),
        }
        self.hours = int(s.lease_hours)
        self.timeout = float(s.provision_timeout)
        self.ssh_port = int(s.ssh_port)

    @property
    def tf_dir(self) -> Path:
        """A copy of tf/kvm per attendee: Terraform keeps its state next to the files."""
        return self.ctx.run_dir / "terraform"

    @property
    def inventory(self) -> Path:
        return self.ctx.run_dir / "inventory.yml"

    @property
    def kubespray_inventory(self) -> Path:
        """Kubespray's inventory folder: hosts.yaml beside the add-ons' group_vars."""
        return self.ctx.run_dir / "kubespray-inventory" / "mycluster"

    @property
    def kubeconfig(self) -> Path:
        """The cluster's admin credentials, fetched from the control node by Ansible."""
        return self.ctx.run_dir / "kubeconfig"

    @property
    def ansible_dir(self) -> Path:
        return scenario_dir() / "ansible"

    @property
    def lease_name(self) -> str:
        return f"continuous-x-{self.suffix}"

    def plan(self) -> str:
        """What the platform stage will start (and bill), said before it starts it."""
        return (
            f"Chameleon {self.site}: a {self.hours} h lease of 3 x {self.flavor} "
            f"VMs ({self.tf_vars['image']}) and 1 floating IP, names ending "
            f"'{self.suffix}'"
        )

    def api_allowed_cidr(self) -> str:
        """Who may reach the Kubernetes API: the user's own public address, never 0.0.0.0/0."""
        import ipaddress

        raw = self.ctx.settings.api_allowed_cidr
        if not raw:
            raise ConfigError(
                "set api_allowed_cidr (MLOPS_API_ALLOWED_CIDR) to your public "
                "address, e.g. 198.51.100.7/32: only it may reach the "
                "cluster's API port 6443"
            )
        try:
            network = ipaddress.ip_network(str(raw), strict=False)
        except ValueError as exc:
            raise ConfigError(f"api_allowed_cidr {raw!r} is not an address range: {exc}") from None
        if network.prefixlen == 0:
            raise ConfigError(
                "api_allowed_cidr must not be the whole internet; use your own address with /32"
            )
        return str(network)

    def session(self) -> ChiSession:
        return ChiSession(self.site, self.auth_url, self.credential_id, self.credential_secret)

    def _cloud_env(self) -> dict[str, str]:
        """What terraform-provider-openstack reads (no clouds.yaml needed)."""
        return {
            "OS_AUTH_TYPE": "v3applicationcredential",
            "OS_AUTH_URL": self.auth_url,
            "OS_APPLICATION_CREDENTIAL_ID": self.credential_id,
            "OS_APPLICATION_CREDENTIAL_SECRET": self.credential_secret,
            "OS_REGION_NAME": self.site,
        }

    def _tf_args(self, lease: dict[str, Any], api_cidr: str) -> list[str]:
        values = {
            **self.tf_vars,
            "reserved_flavor": lease["reserved_flavor"],
            "floating_ip": lease["floating_ip"],
            "api_allowed_cidr": api_cidr,
        }
        return [f"-var={key}={value}" for key, value in values.items()]

    def start_platform(self) -> dict[str, Any]:
        api_cidr = self.api_allowed_cidr()  # refuse before anything is created
        gitops = self.gitops_repo()
        self.ctx.say(self.plan())
        chi = self.session()
        # recorded first, so a creation that fails half way is still ended; the teardown
        # treats a lease that does not exist as already released
        self.ctx.tracker.add(
            "chameleon_lease",
            self.lease_name,
            module=MODULE,
            lease=self.lease_name,
            site=self.site,
            auth_url=self.auth_url,
            credential_id=self.credential_id,
        )
        try:
            lease = chi.lease(
                self.lease_name,
                self.flavor,
                3,
                self.hours,
                timeout=self.timeout,
                interval=self.poll_interval,
            )
        except (StageError, WaitTimeout) as exc:
            raise StageError(f"Chameleon ({self.auth_url}): {exc}") from exc
        except Exception as exc:  # python-chi, blazarclient and keystoneauth errors
            raise StageError(
                f"Chameleon ({self.auth_url}) refused the lease "
                f"{self.lease_name}: {type(exc).__name__}: {exc}"
            ) from exc
        self.ctx.say(
            f"lease {self.lease_name} {lease['status']}: floating IP {lease['floating_ip']}"
        )
        args = self._tf_args(lease, api_cidr)
        self.ctx.tracker.add(
            "chameleon_terraform",
            self.suffix,
            module=MODULE,
            tf_dir=str(self.tf_dir),
            args=args,
            timeout=self.timeout,
            auth_url=self.auth_url,
            credential_id=self.credential_id,
            site=self.site,
        )
        shutil.copytree(scenario_dir() / "tf" / "kvm", self.tf_dir, dirs_exist_ok=True)
        env = self._cloud_env()
        run_tool(["terraform", "init", "-input=false"], self.tf_dir, self.timeout, env=env)
        run_tool(
            ["terraform", "apply", "-auto-approve", "-input=false", *args],
            self.tf_dir,
            self.timeout,
            env=env,
        )
        outputs = json.loads(run_tool(["terraform", "output", "-json"], self.tf_dir, 120, env=env))
        address = outputs["floating_ip_out"]["value"]
        nodes = outputs["private_ips"]["value"]
        self.check_cloud(chi, api_cidr)
        self.render_inventories(address, nodes)
        chi.wait_for_ssh(address, self.ssh_port, int(self.timeout))
        env = {
            "MLOPS_ATTENDEE": self.suffix,
            "GITOPS_REPO": gitops,
            "ANSIBLE_CONFIG": str(self.ansible_dir / "ansible.cfg"),
            "KUBECONFIG": str(self.kubeconfig),
        }
        extra = {
            "kubespray_inventory": self.kubespray_inventory,
            "kubespray_version": KUBESPRAY_VERSION,
            "kubeconfig_path": self.kubeconfig,
            "floating_ip": address,
        }
        for playbook in PLAYBOOKS:
            self.ctx.say(f"ansible-playbook {playbook}")
            argv = ["ansible-playbook", "-i", str(self.inventory)]
            for key, value in extra.items():
                argv += ["-e", f"{key}={value}"]
            run_tool([*argv, playbook], self.ansible_dir, self.timeout, env=env)
            if playbook == KUBESPRAY_PLAYBOOK and not self.kubeconfig.is_file():
                raise StageError(
                    f"{playbook} did not fetch the cluster's kubeconfig to {self.kubeconfig}"
                )
        urls = {
            name: f"http://{address}:{NODE_PORTS[name]}"
            for name in ("mlflow", "training", "evaluation")
        }
        # production's public address: ingress-nginx, which sends the canary its share
        urls["production"] = f"http://{address}"
        return {
            "urls": urls,
            "floating_ip": address,
            "lease": lease,
            "kubeconfig": str(self.kubeconfig),
        }

    def check_cloud(self, chi: ChiSession, api_cidr: str) -> None:
        """What Terraform made, read back from Nova and Neutron: three ACTIVE nodes, and the
        API port open to the user's address only."""
        from mlops_helpers.waiting import wait_until

        wanted = {f"node{i}-mlops-{self.suffix}" for i in (1, 2, 3)}
        servers = wait_until(
            lambda: chi.servers(f"-mlops-{self.suffix}$"),
            what=f"the three servers of {self.suffix}",
            timeout=min(self.timeout, 1200),
            interval=min(self.poll_interval, 5),
            until=lambda found: all(found.get(n) == "ACTIVE" for n in wanted),
            describe=lambda found: str(found),
            progress=False,
        )
        if set(servers) != wanted:
            raise StageError(f"expected servers {sorted(wanted)}, found {sorted(servers)}")
        api = [
            r
            for r in chi.ingress_rules(f"allow-mlops-{self.suffix}")
            if (r.get("port_range_min") or 0) <= KUBE_API_PORT <= (r.get("port_range_max") or 65535)
        ]
        sources = {r.get("remote_ip_prefix") or "0.0.0.0/0" for r in api}
        if sources != {api_cidr}:
            raise StageError(
                f"port {KUBE_API_PORT} is open to {sorted(sources) or 'nobody'}; "
                f"it must be open to {api_cidr} only"
            )

    def gitops_repo(self) -> str:
        repo = self.ctx.settings.gitops_repo
        if not repo:
            raise ConfigError(
                "set gitops_repo (MLOPS_GITOPS_REPO) to the git URL Argo CD "
                "syncs from: your fork of this repository"
            )
        return str(repo)

    def render_inventories(self, floating_ip: str, nodes: dict[str, str]) -> None:
        """inventory.yml and Kubespray's inventory folder from their templates, in the run dir."""
        values = {"floating_ip": floating_ip, **nodes}
        template = self.ansible_dir / "inventory.yml.tmpl"
        self.inventory.write_text(Template(template.read_text()).substitute(values))
        render_kubespray_inventory(self.ansible_dir, self.kubespray_inventory, values)

    # -- the lifecycle's cluster steps, as Argo Workflows ------------------------------------
    def submit(
        self, template: str, timeout: float | None = None, **parameters: str
    ) -> dict[str, Any]:
        """Submit a WorkflowTemplate, wait for it (bounded) and return the finished workflow.

        As argo v3 does: ``argo submit --wait -o json`` prints the workflow as created (no
        phase, no nodes) and exits 1 when it fails; ``argo get -o json`` has the result.
        Every argo/kubectl call uses the cluster's kubeconfig, fetched by the platform."""
        if not self.kubeconfig.is_file():
            raise StageError(f"no kubeconfig at {self.kubeconfig}: run the platform stage first")
        env = {"KUBECONFIG": str(self.kubeconfig)}
        argv = ["argo", "submit", "-n", "argo", "--from", f"workflowtemplate/{template}"]
        argv += ["--wait", "-o", "json"]
        for key, value in parameters.items():
            argv += ["-p", f"{key}={value}"]
        done = _run(argv, scenario_dir(), timeout or self.timeout, env=env)
        name = _workflow_name(done.stdout)
        if name is None:  # not even created: argo's own error says why
            raise _failed(argv, done)
        workflow: dict[str, Any] = json.loads(
            run_tool(["argo", "get", name, "-n", "argo", "-o", "json"], scenario_dir(), 120, env)
        )
        status = workflow.get("status") or {}
        phase = status.get("phase")
        if phase not in FINISHED_PHASES:
            raise StageError(
                f"argo stopped waiting (exit {done.returncode}) while workflow {name} "
                f"({template}) is {phase}: {done.stderr.strip()[-500:] or 'no message'}"
            )
        if phase != "Succeeded":
            failed_steps = [
                f"{node.get('displayName')}: {node.get('message', 'no message')}"
                for node in (status.get("nodes") or {}).values()
                if node.get("type") == "Pod" and node.get("phase") in ("Failed", "Error")
            ]
            raise StageError(
                f"workflow {name} ({template}) ended {phase}: "
                f"{status.get('message', 'no message')}"
                + (f"; failed steps: {'; '.join(failed_steps)}" if failed_steps else "")
            )
        return workflow

    @staticmethod
    def step_result(workflow: dict[str, Any], step: str) -> str:
        for node in workflow.get("status", {}).get("nodes", {}).values():
            if node.get("displayName") == step:
                return str(node.get("outputs", {}).get("result", ""))
        raise StageError(f"workflow {workflow.get('metadata', {}).get('name')} has no step {step}")

    def start_training(self, request: dict[str, Any]) -> dict[str, Any]:
        """The cluster's way: submit train-model and wait for it (bounded by train_timeout,
        which the workflow's own poll also honours); its train step prints the run id."""
        limit = float(self.ctx.settings.train_timeout)
        workflow = self.submit(
            "train-model",
            timeout=limit + 120,
            **{
                "dataset": str(request["dataset"]),
                "model-type": str(request["model_type"]),
                "params": json.dumps(request.get("params", {})),
                "timeout-seconds": str(int(limit)),
            },
        )
        run_id = self.step_result(workflow, "train")
        if not run_id:
            raise StageError(f"workflow {workflow['metadata']['name']} printed no run id")
        return {"run_id": run_id, "workflow": workflow["metadata"]["name"]}

    def build(self, model_name: str, version: str) -> dict[str, Any]:
        workflow = self.submit(
            "build-container-image", **{"model-version": version, "deploy": "false"}
        )
        tag = self.step_result(workflow, "fetch")
        return {
            "tag": tag,
            "digest": tag.rsplit("-", 1)[-1],
            "model_version": version,
            "model_name": model_name,
            "workflow": workflow["metadata"]["name"],
        }

    def deploy(self, environment: str, bundle: dict[str, Any]) -> dict[str, Any]:
        self.submit(
            "deploy-container-image",
            environment=environment,
            **{"image-tag": bundle["tag"], "model-version": bundle["model_version"]},
        )
        address = (self.ctx.state.get("platform") or {}).get("floating_ip")
        return {
            "environment": environment,
            "tag": bundle["tag"],
            "model_version": bundle["model_version"],
            "url": f"http://{address}:{NODE_PORTS[environment]}",
            "server": None,
        }


def render_kubespray_inventory(ansible_dir: Path, target: Path, values: dict[str, str]) -> None:
    """A copy of ansible/k8s/inventory/mycluster at ``target`` with hosts.yaml rendered from its
    template: Ansible reads the group_vars next to the inventory it is given, so the add-ons
    (registry, ingress-nginx) are only enabled when the two sit together, as in Kubespray's
    inventory/sample layout."""
    source = ansible_dir / "k8s" / "inventory" / "mycluster"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.tmpl"), dirs_exist_ok=True)
    hosts = Template((source / "hosts.yaml.tmpl").read_text()).substitute(values)
    (target / "hosts.yaml").write_text(hosts)


def _workflow_name(stdout: str) -> str | None:
    """The name of the workflow ``argo submit -o json`` printed as created, if it did."""
    try:
        created = json.loads(stdout)
    except ValueError:
        return None
    name = created.get("metadata", {}).get("name") if isinstance(created, dict) else None
    return str(name) if name else None


def _reveal(value: Any) -> str:
    return value.reveal() if hasattr(value, "reveal") else str(value or "")


@teardown_handler("chameleon_terraform")
def _destroy_vms(params: dict[str, Any]) -> None:
    """Destroy whatever apply created, even a half-finished apply (its state is partial)."""
    tf_dir = Path(params["tf_dir"])
    if (tf_dir / ".terraform").is_dir() or (tf_dir / "terraform.tfstate").is_file():
        env = {
            "OS_AUTH_TYPE": "v3applicationcredential",
            "OS_AUTH_URL": params["auth_url"],
            "OS_APPLICATION_CREDENTIAL_ID": params["credential_id"],
            "OS_APPLICATION_CREDENTIAL_SECRET": _secret(),
            "OS_REGION_NAME": params["site"],
        }
        run_tool(
            ["terraform", "destroy", "-auto-approve", "-input=false", *params["args"]],
            tf_dir,
            float(params["timeout"]),
            env=env,
        )


@teardown_handler("chameleon_lease")
def _end_lease(params: dict[str, Any]) -> None:
    """End the lease; one that was never created (or is already gone) needs nothing."""
    try:
        _session(params).delete_lease(params["lease"])
    except ConfigError:
        raise
    except Exception as exc:
        raise StageError(
            f"could not end lease {params['lease']} at {params['auth_url']}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
