"""Preflight checks: what this machine has, and what each missing piece means."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

from mlops_helpers.config import Settings
from mlops_helpers.credentials import CLOUD_BACKENDS
from mlops_helpers.extras import EXTRA_MODULES, extra_installed
from mlops_helpers.servers import free_port, port_is_free

OK, MISSING, WARN = "ok", "absent", "warning"


@dataclass(frozen=True)
class Check:
    area: str
    item: str
    status: str
    detail: str


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    good = sys.version_info[:2] >= (3, 11)
    return Check("python", "version", OK if good else WARN,
                 f"{version}" + ("" if good else " (the workshop needs 3.11 or newer)"))


def _extras() -> list[Check]:
    rows = []
    for extra, modules in EXTRA_MODULES.items():
        present = extra_installed(extra)
        rows.append(Check(
            "extras", extra, OK if present else MISSING,
            "installed" if present else
            f"needs {', '.join(modules)}: pip install -e '.[{extra}]'",
        ))
    return rows


def _ports() -> Check:
    try:
        port = free_port()
        usable = port_is_free(port)
    except OSError as exc:
        return Check("network", "loopback ports", WARN, f"cannot bind 127.0.0.1: {exc}")
    return Check("network", "loopback ports", OK if usable else WARN,
                 "free ports can be picked on 127.0.0.1 for the local servers")


def _tool(name: str, meaning: str) -> Check:
    path = shutil.which(name)
    return Check("tools", name, OK if path else MISSING, path or meaning)


def _docker_engine() -> Check:
    if not shutil.which("docker"):
        return Check("tools", "docker engine", MISSING,
                     "no docker client: container images cannot be built here; the local "
                     "backends run the same programs as plain processes")
    try:
        done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return Check("tools", "docker engine", MISSING, "docker info did not answer in 10 s")
    if done.returncode == 0 and done.stdout.strip():
        return Check("tools", "docker engine", OK, f"server {done.stdout.strip()}")
    return Check("tools", "docker engine", MISSING,
                 "the docker client is here but no engine answers: images cannot be built and "
                 "kind cannot start a cluster; the local backends do not need it")


def _credentials(settings: Settings) -> list[Check]:
    rows = []
    for cloud in CLOUD_BACKENDS:
        present = cloud.credentials_present(settings)
        detail = (f"{cloud.credential_names()} set; the cloud backend of "
                  f"{', '.join(cloud.scenarios)} can be used" if present else
                  f"{cloud.credential_names()} not set: {cloud.meaning_when_absent}")
        rows.append(Check("credentials", cloud.name, OK if present else MISSING, detail))
    return rows


def run_checks(settings: Settings | None = None) -> list[Check]:
    settings = settings or Settings.load("doctor")
    return [
        _python(),
        *_extras(),
        _ports(),
        _docker_engine(),
        _tool("kind", "kind is not installed: the seldon_kind cluster test cannot run here; "
                      "its files are validated instead"),
        _tool("kubectl", "kubectl is not installed: manifests are validated offline only"),
        _tool("helm", "helm is not installed: the Seldon operator cannot be installed here"),
        _tool("terraform", "terraform is not installed: the Chameleon files are parsed with "
                           "python-hcl2 instead"),
        _tool("argo", "the argo CLI is not installed: the continuous_x chameleon backend "
                      "submits its WorkflowTemplates with it"),
        _tool("git", "git is needed by the GitOps and DVC scenarios"),
        *_credentials(settings),
    ]


def format_table(checks: list[Check]) -> str:
    widths = [max(len(getattr(c, f)) for c in checks) for f in ("area", "item", "status")]
    header = f"{'area':<{widths[0]}}  {'item':<{widths[1]}}  {'status':<{widths[2]}}  detail"
    lines = [header, "-" * len(header)]
    for c in checks:
        lines.append(f"{c.area:<{widths[0]}}  {c.item:<{widths[1]}}  "
                     f"{c.status:<{widths[2]}}  {c.detail}")
    return "\n".join(lines)
