"""Optional dependencies that fail lazily, with the exact install command."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from mlops_helpers.errors import MissingExtraError

# Which extra brings which importable module; used by `require` and by the doctor.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "aws": ("boto3",),
    "ibm": ("ibm_watsonx_ai", "ibm_watson_openscale"),
    "chameleon": ("chi",),
    "dvc": ("dvc",),
    "mlflow": ("mlflow",),
    "lab": ("jupyterlab",),
    "dev": ("pytest", "ruff", "moto", "cfnlint", "kubernetes_validate", "hcl2"),
}


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an error that says which extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the module exists but one of *its* imports is broken: show that
        raise MissingExtraError(module, extra) from exc


def is_installed(module: str) -> bool:
    """True when ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def extra_installed(extra: str) -> bool:
    return all(is_installed(m) for m in EXTRA_MODULES[extra])
