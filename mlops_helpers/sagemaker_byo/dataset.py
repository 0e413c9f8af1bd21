"""The scenario's data: a bundled scikit-learn set, written as the CSV files the job reads.

The split is the same for one scikit-learn version (``mlops_helpers.data``: stratified,
seeded), so it is made once per checkout and version and kept under ``build/cache/``: the
``train`` stage (its own process in Jenkins) and the notebook then read two small CSV files
instead of importing scikit-learn, about a second of CPU each time. The container's ``train``
still fits with scikit-learn, in its own process.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from mlops_helpers import paths
from mlops_helpers.data import SEED, load_dataset

SPLITS = ("train", "test")
NAMES_FILE = "target_names.json"


def split_dir(name: str) -> Path:
    """Where this data set's split is kept for the installed scikit-learn."""
    return paths.build_dir() / "cache" / f"{name}-split-sklearn{version('scikit-learn')}-{SEED}"


def _split(name: str) -> Path:
    """The cached split (``train.csv``, ``test.csv``, the class names); made on first use."""
    folder = split_dir(name)
    if (folder / NAMES_FILE).is_file():
        return folder
    import numpy as np

    data = load_dataset(name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test)):
        # label first, no header: what the container's train expects
        np.savetxt(partial / f"{split}.csv", np.column_stack([y, X]), delimiter=",", fmt="%.10g")
    (partial / NAMES_FILE).write_text(json.dumps(data.target_names))  # written last: complete
    try:
        os.replace(partial, folder)
    except OSError:  # another process kept the same split first
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def write_csvs(name: str, folder: Path) -> dict[str, Path]:
    """``train.csv`` (label first, no header: what ``train`` expects) and ``test.csv``.

    The test split is held out: the smoke test sends its features and checks its labels.
    """
    source = _split(name)
    folder.mkdir(parents=True, exist_ok=True)
    files = {split: folder / f"{split}.csv" for split in SPLITS}
    for path in files.values():
        shutil.copyfile(source / path.name, path)
    return files


def read_csv(path: Path) -> tuple[list[list[float]], list[int]]:
    """Rows of features and their labels from a label-first CSV."""
    import numpy as np

    data = np.loadtxt(path, delimiter=",", ndmin=2)
    return data[:, 1:].tolist(), data[:, 0].astype(int).tolist()


def target_names(name: str) -> list[str]:
    names: list[str] = json.loads((_split(name) / NAMES_FILE).read_text())
    return names
