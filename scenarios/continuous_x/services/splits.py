"""The data both services use: scikit-learn's bundled sets, split the same seeded way.

Nothing is downloaded; the training and evaluation services see the same split, so the
evaluation really measures held-out rows.
"""

from __future__ import annotations

from typing import Any

SEED = 42
DATASETS = ("iris", "wine", "breast_cancer", "digits")


def load_split(name: str, test_size: float = 0.25) -> tuple[Any, Any, Any, Any]:
    """(X_train, X_test, y_train, y_test) of a bundled scikit-learn data set."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    bunch = getattr(datasets, f"load_{name}")()
    return train_test_split(
        bunch.data, bunch.target, test_size=test_size, random_state=SEED, stratify=bunch.target
    )
