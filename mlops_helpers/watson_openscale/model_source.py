"""The data scientist's model module, loaded from ``scenarios/watson_openscale/model``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from mlops_helpers import paths
from mlops_helpers.errors import StageError

REQUIRED = ("load_config", "load_data", "train", "save", "load", "predict")


def project_dir() -> Path:
    return paths.scenarios_dir() / "watson_openscale"


def load_model_module(folder: Path | None = None) -> ModuleType:
    """Import ``model/model.py`` by path, and check it offers what the pipeline calls."""
    path = (folder or project_dir()) / "model" / "model.py"
    if not path.is_file():
        raise StageError(f"the model module {path} is missing")
    name = "watson_openscale_model"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    missing = [f for f in REQUIRED if not callable(getattr(module, f, None))]
    if missing:
        raise StageError(f"{path} does not define {missing}: the pipeline calls them")
    return module
