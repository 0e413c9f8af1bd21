"""The bring-your-own container's source: where it is, what it must hold, its digest."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from mlops_helpers import paths
from mlops_helpers.config import Settings
from mlops_helpers.errors import StageError

REQUIRED = (
    "Dockerfile",
    "requirements.txt",
    "program/train",
    "program/serve",
    "program/app.py",
    "program/opt_ml.py",
)
PROGRAMS = ("program/train", "program/serve")


def container_dir(settings: Settings | None = None) -> Path:
    """The ``container_dir`` setting (Jenkins: the checked-out workspace's copy), else the
    copy in this project."""
    chosen = settings.container_dir if settings is not None else None
    return Path(chosen) if chosen else paths.scenarios_dir() / "sagemaker_byo" / "container"


def source_files(root: Path) -> list[Path]:
    """Every file that goes into the image, in a stable order (no caches)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def digest(root: Path) -> str:
    """A content digest of the image's files: same code, same tag."""
    h = hashlib.sha256()
    for path in source_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def check(root: Path) -> list[str]:
    """What is wrong with the container source (empty when it is fine)."""
    problems = [f"missing {name}" for name in REQUIRED if not (root / name).is_file()]
    for name in PROGRAMS:
        path = root / name
        if path.is_file() and not path.stat().st_mode & 0o111:
            problems.append(f"{name} is not executable (SageMaker runs it by name)")
    for path in (root / "program").glob("*"):
        if path.is_file() and path.suffix in ("", ".py"):
            try:
                compile(path.read_text(), str(path), "exec")
            except SyntaxError as exc:
                problems.append(f"{path.name} does not compile: line {exc.lineno}: {exc.msg}")
    return problems


def stage_image(root: Path, target: Path) -> Path:
    """Copy the checked source to ``target`` (the local stand-in for a pushed image)."""
    problems = check(root)
    if problems:
        raise StageError(f"container source {root} is not ready: " + "; ".join(problems))
    if not target.is_dir():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(root, tmp, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        tmp.replace(target)
    return target
