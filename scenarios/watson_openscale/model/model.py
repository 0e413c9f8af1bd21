"""The model the pipeline stores, deploys and monitors: digits, 8x8 pixel images, 10 classes.

The pipeline only relies on four functions: ``load_config``, ``load_data``, ``train`` and
``load``/``predict``. Everything else about the model may change freely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_PATH = Path(__file__).with_name("config.json")


@dataclass(frozen=True)
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]


def load_config(path: Path = CONFIG_PATH) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(Path(path).read_text())
    return config


def load_data(config: dict[str, Any]) -> Split:
    """A stratified, seeded split of the digits set that ships with scikit-learn."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        bunch.data,
        bunch.target,
        test_size=config["test_size"],
        random_state=config["seed"],
        stratify=bunch.target,
    )
    return Split(X_train, X_test, y_train, y_test, [str(f) for f in bunch.feature_names])


def train(X: np.ndarray, y: np.ndarray, config: dict[str, Any]) -> Any:
    """Scaled pixels into a logistic regression: fast, and it gives class probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    params = config.get("estimator", {})
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=params.get("C", 0.1), max_iter=params.get("max_iter", 2000)),
    )
    return model.fit(X, y)


def save(model: Any, path: Path) -> Path:
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def load(path: Path) -> Any:
    import joblib

    return joblib.load(path)


def predict(model: Any, rows: np.ndarray) -> tuple[list[int], list[list[float]]]:
    """Labels and the probability of every class, as plain Python lists."""
    X = np.asarray(rows, dtype=float)
    probabilities = model.predict_proba(X)
    labels = model.classes_[probabilities.argmax(axis=1)]
    return [int(v) for v in labels], probabilities.round(6).tolist()
