"""The lock files hold what pyproject.toml and the Seldon requirements ask for, every pin is
hash-checked, and environment.yml names the same packages at the locked versions.

A failure here means a dependency changed without `make lock`: run it and commit the result.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops_helpers.paths import project_root
from mlops_helpers.seldon_kind.runtime import lock_file, requirements_file

ROOT = project_root()
PROJECT_LOCK = ROOT / "requirements" / "project.lock.txt"
# the interpreters a laptop may bring (pyproject: >=3.11,<3.13) on Linux and macOS
LAPTOPS = {
    "linux-3.11": {
        "python_version": "3.11",
        "python_full_version": "3.11.7",
        "sys_platform": "linux",
        "platform_system": "Linux",
    },
    "macos-3.12": {
        "python_version": "3.12",
        "python_full_version": "3.12.4",
        "sys_platform": "darwin",
        "platform_system": "Darwin",
    },
}
BASE_ENV = {
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_machine": "x86_64",
}


def _environment_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "environment_tool", ROOT / "requirements" / "environment.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _environment_tool()


def _seldon_requirements() -> list[Requirement]:
    lines = requirements_file().read_text().splitlines()
    return [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]


@pytest.mark.parametrize("laptop", sorted(LAPTOPS))
@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (PROJECT_LOCK, TOOL.project_requirements),
        (lock_file(), _seldon_requirements),
    ],
    ids=["project", "seldon-runtime"],
)
def test_lock_holds_every_requirement_at_an_allowed_version(lock, requirements, laptop) -> None:
    pins = TOOL.locked_versions(lock, {**BASE_ENV, **LAPTOPS[laptop]})
    problems = []
    for requirement in requirements():
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not in {lock.name}")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} does not meet '{requirement}'")
    assert not problems, "run `make lock`:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "lock",
    [PROJECT_LOCK, lock_file(), ROOT / "requirements" / "watson-image.lock.txt"],
    ids=["project", "seldon-runtime", "watson-image"],
)
def test_every_pin_is_hash_checked(lock: Path) -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 2)[2])
    pins = [e for e in entries if "==" in e.splitlines()[0]]
    assert len(pins) > 10
    unhashed = [e.splitlines()[0] for e in pins if "--hash=sha256:" not in e]
    assert not unhashed, f"pins without a hash in {lock.name}: {unhashed}"


def test_environment_yml_names_the_same_packages_at_the_locked_versions() -> None:
    text = (ROOT / "environment.yml").read_text()
    listed = re.findall(r"^\s+- ([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(\S+)$", text, re.MULTILINE)
    named = {canonicalize_name(r.name) for r in TOOL.project_requirements()}
    assert {canonicalize_name(name) for name, _ in listed} == named
    pins = TOOL.locked_versions(PROJECT_LOCK)
    assert all(pins[canonicalize_name(name)] == version for name, version in listed)
    assert text == TOOL.rendered(), "environment.yml is out of step: run `make lock`"


def test_the_project_does_not_lock_itself() -> None:
    assert "mlops-workshop" not in TOOL.locked_versions(PROJECT_LOCK)
