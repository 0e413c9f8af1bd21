"""Where the SageMaker container contract puts things, relative to one base folder.

SageMaker mounts everything under ``/opt/ml``. The base comes from ``BYO_OPT_ML`` so the
workshop's local backend runs these very programs in a temporary tree.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

DEFAULT_BASE = "/opt/ml"
MODEL_FILE = "model.joblib"
META_FILE = "model-meta.json"


def base() -> Path:
    return Path(os.environ.get("BYO_OPT_ML") or DEFAULT_BASE)


def hyperparameters_path() -> Path:
    return base() / "input" / "config" / "hyperparameters.json"


def input_data_config_path() -> Path:
    """SageMaker writes one entry per channel of the job's InputDataConfig here."""
    return base() / "input" / "config" / "inputdataconfig.json"


def channel_dir(channel: str = "training") -> Path:
    return base() / "input" / "data" / channel


def model_dir() -> Path:
    return base() / "model"


def failure_path() -> Path:
    return base() / "output" / "failure"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def file_digest(path: Path) -> str:
    """sha256 of one file: the model's identity, the same inside and outside the container."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
