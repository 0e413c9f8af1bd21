"""The scenario's data: a bundled scikit-learn set, written as the CSV files the job reads."""

from __future__ import annotations

from pathlib import Path

from mlops_helpers.data import load_dataset


def write_csvs(name: str, folder: Path) -> dict[str, Path]:
    """``train.csv`` (label first, no header: what ``train`` expects) and ``test.csv``.

    The test split is held out: the smoke test sends its features and checks its labels.
    """
    import numpy as np

    data = load_dataset(name)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train": folder / "train.csv", "test": folder / "test.csv"}
    for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test)):
        np.savetxt(files[split], np.column_stack([y, X]), delimiter=",", fmt="%.10g")
    return files


def read_csv(path: Path) -> tuple[list[list[float]], list[int]]:
    """Rows of features and their labels from a label-first CSV."""
    import numpy as np

    data = np.loadtxt(path, delimiter=",", ndmin=2)
    return data[:, 1:].tolist(), data[:, 0].astype(int).tolist()


def target_names(name: str) -> list[str]:
    return load_dataset(name).target_names
