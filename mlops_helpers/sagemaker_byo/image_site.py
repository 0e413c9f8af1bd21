"""The image's own Python packages, for running the container's programs on this machine.

The Dockerfile installs ``container/requirements.txt`` on a slim Python; this project's
environment holds much more (pandas, MLflow, Jupyter, ...). Run in our environment, the
programs would see all of it: scikit-learn imports pandas whenever it is installed (about a
fifth of the CPU of every ``train`` and every ``serve`` worker start, which the image never
pays), and a program importing a package the image lacks would work here and fail on
SageMaker.

So the local "image" gets a site-packages of its own: a folder of links to the installed
distributions that requirements.txt names plus everything they require (extras and markers
honoured), and the programs run as ``python -S`` (none of our site-packages) with only that
folder on ``PYTHONPATH``. uvicorn's worker processes inherit both.
"""

from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from mlops_helpers.errors import StageError

SITE_DIR = "site-packages"  # inside a staged image


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def read_requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def distributions(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the requirements need, by normalised name."""
    found: dict[str, metadata.Distribution] = {}
    extras: dict[str, set[str]] = {}
    todo = list(requirements)
    while todo:
        wanted = todo.pop()
        key = _key(wanted.name)
        if key in found and set(wanted.extras) <= extras[key]:
            continue
        try:
            dist = found.get(key) or metadata.distribution(wanted.name)
        except metadata.PackageNotFoundError:
            raise StageError(
                f"the image needs {wanted.name}, which is not installed here: "
                f"pip install '{wanted}'"
            ) from None
        found[key] = dist
        extras[key] = extras.get(key, set()) | set(wanted.extras)
        for text in dist.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in extras[key] | {""}
            ):
                todo.append(needed)
    return found


def _top_level(dist: metadata.Distribution) -> set[str]:
    """The first part of each path the distribution installed (read from its RECORD as
    text: ``dist.files`` makes an object per file, several thousand for scipy)."""
    record = dist.read_text("RECORD")
    paths = (
        [line.split(",", 1)[0] for line in record.splitlines()]
        if record
        else [str(file) for file in dist.files or []]
    )
    return {path.split("/", 1)[0] for path in paths if path}


def link_site(requirements_file: Path, target: Path) -> Path:
    """(Re)make ``target``: one link per top-level entry (package, module, ``.libs``,
    ``.dist-info``) of each distribution the requirements need."""
    entries: dict[str, Path] = {}
    for dist in distributions(read_requirements(requirements_file)).values():
        base = Path(str(dist.locate_file("")))
        for top in _top_level(dist) - {"..", "__pycache__"}:
            if (base / top).exists():
                entries[top] = base / top
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, source in entries.items():
        (tmp / name).symlink_to(source)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def python(site: Path) -> tuple[list[str], dict[str, str]]:
    """The interpreter command and the environment that see ``site`` and nothing else."""
    if not site.is_dir():
        raise StageError(f"the image has no {site.name} at {site.parent}: run the build stage")
    return [sys.executable, "-S"], {"PYTHONPATH": str(site)}
