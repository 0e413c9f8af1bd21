"""Where things live: the project checkout, notebooks, images and run directories."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout this package runs from (editable install), else the current directory.

    ``MLOPS_PROJECT_ROOT`` overrides both, for an installed package used beside a checkout.
    """
    override = os.environ.get("MLOPS_PROJECT_ROOT")
    if override:
        return Path(override).resolve()
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
        return candidate
    return Path.cwd().resolve()


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def images_dir() -> Path:
    return project_root() / "images"


def scenarios_dir() -> Path:
    return project_root() / "scenarios"


def build_dir() -> Path:
    return project_root() / "build"
