"""Data sets that ship with scikit-learn: nothing is downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_helpers.errors import UnknownNameError

SEED = 42
DATASETS = ("iris", "digits", "wine", "breast_cancer")


@dataclass(frozen=True)
class Dataset:
    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    target_names: list[str]

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def frame(self, split: str = "train", label: str = "target") -> Any:
        """The split as a pandas DataFrame with the label in column ``label``."""
        import pandas as pd

        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_test, self.y_test)
        df = pd.DataFrame(X, columns=self.feature_names)
        df[label] = y
        return df


def load_dataset(name: str = "iris", test_size: float = 0.25, seed: int = SEED) -> Dataset:
    """A stratified, seeded train/test split of one of scikit-learn's bundled sets."""
    if name not in DATASETS:
        raise UnknownNameError("dataset", name, list(DATASETS))
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    bunch = getattr(datasets, f"load_{name}")()
    X_train, X_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=test_size, random_state=seed, stratify=bunch.target
    )
    features = [str(f) for f in getattr(bunch, "feature_names", [])] or [
        f"f{i}" for i in range(bunch.data.shape[1])
    ]
    return Dataset(
        name, X_train, X_test, y_train, y_test, features, [str(t) for t in bunch.target_names]
    )
