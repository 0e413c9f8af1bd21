"""environment.yml's pip list, from pyproject.toml and the lock (``make lock`` runs this).

Every package pyproject.toml names (core and every extra) appears in environment.yml at the
version the lock holds for Python 3.11 on Linux, so a conda user gets what ``make install``
gives. tests/setup/test_locks.py checks that the two stay in step.

    python requirements/environment.py            # rewrite environment.yml's pip list
    python requirements/environment.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements" / "project.lock.txt"
ENVIRONMENT = ROOT / "environment.yml"
BEGIN = "      # --- written by `make lock` from pyproject.toml and requirements/project.lock.txt\n"
END = "      # --- end of the list written by `make lock`\n"
# environment.yml's interpreter (python=3.11) on Linux: the lock entry whose marker holds here
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_machine": "x86_64",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def project_requirements(pyproject: Path = PYPROJECT) -> list[Requirement]:
    """Every requirement pyproject.toml names, core and extras (not the project itself)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    texts = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        texts += extra
    own = canonicalize_name(project["name"])
    return [r for r in map(Requirement, texts) if canonicalize_name(r.name) != own]


def locked_versions(lock: Path = LOCK, env: dict[str, str] | None = None) -> dict[str, str]:
    """name -> pinned version, for the entries whose marker holds in ``env`` (default TARGET)."""
    env = env or TARGET
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        found = PIN.match(line)
        if found and (not found[3] or Marker(found[3]).evaluate(env)):
            pins[canonicalize_name(found[1])] = found[2]
    return pins


def pip_lines(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> list[str]:
    pins = locked_versions(lock)
    lines, seen = [], set()
    for requirement in project_requirements(pyproject):
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        if name not in pins:
            raise SystemExit(
                f"{requirement.name} is in pyproject.toml but not in {lock.name}: run `make lock`"
            )
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        lines.append(f"      - {requirement.name}{extras}=={pins[name]}\n")
    return sorted(lines, key=str.lower)


def rendered(environment: Path = ENVIRONMENT) -> str:
    text = environment.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{environment.name} has no block written by `make lock`")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "".join(pip_lines()) + END + tail


def main(argv: list[str]) -> int:
    new = rendered()
    if "--check" in argv:
        if new != ENVIRONMENT.read_text():
            print("environment.yml is out of step with the lock: run `make lock`", file=sys.stderr)
            return 1
        return 0
    ENVIRONMENT.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
