"""Preflight checks: what this machine has, what each missing piece means, and one verdict.

One table (``run_checks``) covers the system, Python, the attendee suffix, the installed
extras, the Seldon runtime, loopback ports, tools and credentials, and then every backend
of every scenario; ``verdict`` sums it up in one line. Nothing here changes the machine, and
no credential value is ever shown.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from mlops_helpers.config import Settings
from mlops_helpers.credentials import cloud_uses
from mlops_helpers.errors import ConfigError
from mlops_helpers.extras import EXTRA_MODULES, extra_installed
from mlops_helpers.scenario import Backend
from mlops_helpers.scenarios import all_scenarios

OK, MISSING, WARN = "ok", "absent", "warning"
DISTRIBUTION = "mlops-workshop"
FALLBACK_PYTHON_RANGE = ">=3.11,<3.13"  # pyproject's requires-python, if not installed


@dataclass(frozen=True)
class Check:
    area: str
    item: str
    status: str
    detail: str


# -- the machine --------------------------------------------------------------------------
def _system() -> Check:
    name = platform.system()
    if name == "Windows":
        return Check(
            "system",
            "operating system",
            MISSING,
            "Windows: process groups and signals the local servers rely on do not "
            "exist here; install WSL2 (wsl --install) and run the workshop inside it",
        )
    if name in ("Linux", "Darwin"):
        shown = "macOS" if name == "Darwin" else "Linux"
        return Check("system", "operating system", OK, f"{shown} {platform.release()}")
    return Check(
        "system",
        "operating system",
        WARN,
        f"{name}: the workshop is tested on Linux and macOS only",
    )


def supported_python() -> str:
    """The package's ``requires-python`` (from its installed metadata, as pip enforces it)."""
    try:
        return metadata.metadata(DISTRIBUTION)["Requires-Python"] or FALLBACK_PYTHON_RANGE
    except metadata.PackageNotFoundError:
        return FALLBACK_PYTHON_RANGE


def python_range_words(spec: str) -> str:
    """``>=3.11,<3.13`` -> ``3.11–3.12`` (the specifier itself when it is another shape)."""
    low = re.search(r">=\s*3\.(\d+)", spec)
    high = re.search(r"<\s*3\.(\d+)(?!\.)", spec)
    if not (low and high) or int(high.group(1)) - 1 < int(low.group(1)):
        return spec
    return f"3.{low.group(1)}–3.{int(high.group(1)) - 1}"


def python_supported(version: tuple[int, int], spec: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return f"{version[0]}.{version[1]}" in SpecifierSet(spec)


def _python() -> Check:
    spec = supported_python()
    words = python_range_words(spec)
    version = ".".join(map(str, sys.version_info[:3]))
    if python_supported(sys.version_info[:2], spec):
        return Check("python", "version", OK, f"{version} (supported: {words})")
    return Check(
        "python",
        "version",
        MISSING,
        f"{version}: the workshop supports Python {words} only ({spec}); "
        f"create the environment with one of those",
    )


def _attendee(settings: Settings) -> Check:
    try:
        suffix = settings.attendee
    except ConfigError as exc:
        return Check("workshop", "attendee suffix", MISSING, str(exc))
    source = settings.source_of("attendee")
    where = (
        f"from {source[0]}"
        if source
        else "your user name; set MLOPS_ATTENDEE to your initials to choose another"
    )
    return Check(
        "workshop", "attendee suffix", OK, f"'{suffix}' ({where}); every resource name ends with it"
    )


def _extras() -> list[Check]:
    rows = []
    for extra, modules in EXTRA_MODULES.items():
        present = extra_installed(extra)
        rows.append(
            Check(
                "extras",
                extra,
                OK if present else MISSING,
                "installed"
                if present
                else f"needs {', '.join(modules)}: pip install -e '.[{extra}]'",
            )
        )
    return rows


def _seldon_runtime() -> Check:
    """The separate environment seldon-core runs in (it cannot share one with JupyterLab)."""
    try:
        from mlops_helpers.seldon_kind.runtime import runtime_dir
    except ImportError as exc:  # fcntl: not on Windows
        return Check("runtime", "seldon", MISSING, f"cannot be used on this system ({exc})")
    python = runtime_dir() / "bin" / "python"
    if not python.exists():
        return Check(
            "runtime",
            "seldon",
            MISSING,
            f"{runtime_dir()} does not exist: `make install` creates it (seldon_kind "
            "needs it; notebooks never install packages)",
        )
    try:
        done = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.util, sys; "
                "sys.exit(importlib.util.find_spec('seldon_core') is None)",
            ],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("runtime", "seldon", MISSING, f"{python} does not run: {exc}")
    if done.returncode != 0:
        return Check(
            "runtime",
            "seldon",
            MISSING,
            f"{runtime_dir()} has no seldon-core: `make install` completes it",
        )
    return Check("runtime", "seldon", OK, f"seldon-core ready in {runtime_dir()}")


def _ports() -> Check:
    from mlops_helpers.servers import free_port, port_is_free

    try:
        port = free_port()
        usable = port_is_free(port)
    except OSError as exc:
        return Check("network", "loopback ports", MISSING, f"cannot bind 127.0.0.1: {exc}")
    return Check(
        "network",
        "loopback ports",
        OK if usable else WARN,
        "free ports can be picked on 127.0.0.1 for the local servers",
    )


def _tool(name: str, meaning: str) -> Check:
    path = shutil.which(name)
    return Check("tools", name, OK if path else MISSING, path or meaning)


def _versioned_tool(name: str, argv: list[str], minimum: int, why: str) -> Check:
    """A tool whose major version matters (Node and Java for ``make test``'s linter)."""
    if not shutil.which(argv[0]):
        return Check("tools", name, MISSING, f"not installed: {why}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("tools", name, WARN, f"does not answer ({exc}): {why}")
    found = re.search(r"(\d+)(?:\.\d+)*", done.stdout + done.stderr)
    if found is None:
        return Check("tools", name, WARN, f"unknown version: {why}")
    major = int(found.group(1))
    status = OK if major >= minimum else WARN
    return Check("tools", name, status, f"{found.group(0)} (needs {minimum}+: {why})")


def _docker_engine() -> Check:
    if not shutil.which("docker"):
        return Check(
            "tools",
            "docker engine",
            MISSING,
            "no docker client: container images cannot be built here; the local "
            "backends run the same programs as plain processes",
        )
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return Check("tools", "docker engine", MISSING, "docker info did not answer in 10 s")
    if done.returncode == 0 and done.stdout.strip():
        return Check("tools", "docker engine", OK, f"server {done.stdout.strip()}")
    return Check(
        "tools",
        "docker engine",
        MISSING,
        "the docker client is here but no engine answers: images cannot be built and "
        "kind cannot start a cluster; the local backends do not need it",
    )


def _scenario_tools() -> list[Check]:
    """A row for every program a scenario's backend runs (git is the workshop's own)."""
    tools: dict[str, list[str]] = {}
    notes: dict[str, str] = {}
    for spec in all_scenarios().values():
        for backend in spec.backends:
            for tool in backend.tools:
                tools.setdefault(tool.name, []).append(f"{spec.name} {backend.name}")
                if tool.when_absent:
                    notes.setdefault(tool.name, tool.when_absent)
    tools.pop("git", None)
    return [
        _tool(
            name,
            notes.get(name) or f"{name} is not installed: the {', '.join(users)} backend needs it",
        )
        for name, users in tools.items()
    ]


def _credentials(settings: Settings) -> list[Check]:
    rows = []
    for use in cloud_uses():
        cloud = use.cloud
        present = cloud.credentials_present(settings)
        detail = (
            f"{cloud.credential_names()} set; the cloud backend of "
            f"{', '.join(use.scenarios)} can be used"
            if present
            else f"{cloud.credential_names()} not set: {use.meaning_when_absent}"
        )
        rows.append(Check("credentials", cloud.name, OK if present else MISSING, detail))
    return rows


# -- the scenarios ------------------------------------------------------------------------
def _missing_for(needs: Backend, found: dict[tuple[str, str], Check]) -> list[str]:
    """What this machine lacks for a backend, in words, from the rows already checked."""

    def absent(area: str, item: str) -> bool:
        row = found.get((area, item))  # an extra or runtime no row checks: not here
        return row is None or row.status != OK

    missing = [f"the '{e}' extra" for e in needs.extras if absent("extras", e)]
    missing += [t.name for t in needs.tools if absent("tools", t.name)]
    if needs.docker_engine and absent("tools", "docker engine"):
        missing.append("a docker engine")
    if needs.runtime and absent("runtime", needs.runtime):
        missing.append(f"the {needs.runtime} runtime (make install)")
    if needs.cloud and absent("credentials", needs.cloud.name):
        missing.append(f"{needs.cloud.name} credentials")
    return missing


def scenario_checks(machine: list[Check]) -> list[Check]:
    """One row per scenario: its local backend must be ready; its cloud ones are optional."""
    found = {(c.area, c.item): c for c in machine}
    rows = []
    for spec in all_scenarios().values():
        parts = []
        local_missing = _missing_for(spec.backend("local"), found)
        for backend in spec.backends:
            missing = _missing_for(backend, found)
            parts.append(
                f"{backend.name}: " + ("ready" if not missing else "needs " + ", ".join(missing))
            )
        rows.append(
            Check("scenario", spec.name, OK if not local_missing else MISSING, "; ".join(parts))
        )
    return rows


def _machine_checks(settings: Settings) -> list[Check]:
    return [
        _system(),
        _python(),
        _attendee(settings),
        *_extras(),
        _seldon_runtime(),
        _ports(),
        _versioned_tool(
            "node",
            ["node", "--version"],
            20,
            "make test's Jenkinsfile linter (npm-groovy-lint) runs on it",
        ),
        _versioned_tool("java", ["java", "-version"], 17, "npm-groovy-lint runs CodeNarc on it"),
        _tool("git", "git is needed by the GitOps and DVC scenarios"),
        _docker_engine(),
        *_scenario_tools(),
        *_credentials(settings),
    ]


def run_checks(settings: Settings | None = None) -> list[Check]:
    """Every row of the preflight table: the machine, then each scenario's backends."""
    machine = _machine_checks(settings or Settings.load("doctor"))
    return [*machine, *scenario_checks(machine)]


# -- the verdict ----------------------------------------------------------------------------
BLOCKING_AREAS = ("system", "python", "workshop", "network", "scenario")


def ready(checks: list[Check]) -> bool:
    """True when every scenario can run here on its local backend."""
    return all(c.status == OK for c in checks if c.area in BLOCKING_AREAS)


def verdict(checks: list[Check]) -> str:
    """One line: can this machine run the workshop, and if not, what to fix first."""
    blocking = [c for c in checks if c.area in BLOCKING_AREAS and c.status != OK]
    clouds = [f"{c.item}" for c in checks if c.area == "credentials" and c.status == OK]
    cloud_words = (
        "cloud backends with credentials: " + ", ".join(clouds)
        if clouds
        else "no cloud credentials set, which the local backends do not need"
    )
    if not blocking:
        return f"READY: every scenario runs here on its local backend ({cloud_words})."
    names = ", ".join(f"{c.item}" for c in blocking)
    return f"NOT READY: fix {names} (see their rows above)."


def format_table(checks: list[Check]) -> str:
    widths = [max(len(getattr(c, f)) for c in checks) for f in ("area", "item", "status")]
    header = f"{'area':<{widths[0]}}  {'item':<{widths[1]}}  {'status':<{widths[2]}}  detail"
    lines = [header, "-" * len(header)]
    for c in checks:
        lines.append(
            f"{c.area:<{widths[0]}}  {c.item:<{widths[1]}}  {c.status:<{widths[2]}}  {c.detail}"
        )
    return "\n".join(lines)


def format_report(checks: list[Check]) -> str:
    """The table and its verdict line: what ``mlops-workshop doctor`` prints."""
    return f"{format_table(checks)}\n\n{verdict(checks)}"
