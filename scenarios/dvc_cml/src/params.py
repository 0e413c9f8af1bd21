"""Read params.yaml: one place, so every stage sees the same values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    params = yaml.safe_load(path.read_text())
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a mapping of stage names to parameters")
    return params
