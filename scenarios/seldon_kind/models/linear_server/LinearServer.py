"""Our own reusable server: a linear classifier whose weights come from a model URI.

One image, many models: each SeldonDeployment points ``modelUri`` at a different
``model.json`` (weights, intercepts, class and feature names), so iris and wine are two
deployments of the same server. The model is plain JSON: no pickle, no scikit-learn at
serving time.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException

MODEL_FILE = "model.json"
OUTPUTS = ("proba", "label")


def _bad(message: str) -> SeldonMicroserviceException:
    return SeldonMicroserviceException(message, status_code=400)


class LinearServer:
    def __init__(self, model_uri: str = "", output: str = "proba") -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
        path = os.path.join(model_uri, MODEL_FILE) if os.path.isdir(model_uri) else model_uri
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no {MODEL_FILE} at model_uri {model_uri!r}")
        with open(path) as handle:
            model = json.load(handle)
        self.mean = np.asarray(model["mean"], dtype=float)
        self.scale = np.asarray(model["scale"], dtype=float)
        self.coef = np.asarray(model["coef"], dtype=float)
        self.intercept = np.asarray(model["intercept"], dtype=float)
        self.class_names = [str(c) for c in model["class_names"]]
        self.feature_names = list(model.get("feature_names", []))
        self.output = output
        if self.coef.shape != (len(self.class_names), self.mean.size):
            raise ValueError(f"{path}: coef shape {self.coef.shape} does not fit the classes")

    def _rows(self, X: Any) -> np.ndarray:
        try:
            rows = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as exc:
            raise _bad(f"every value must be a number: {exc}") from None
        n = self.mean.size
        if rows.ndim == 1 and rows.size == n:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != n:
            raise _bad(f"expected rows of {n} numbers, got shape {rows.shape}")
        if not np.isfinite(rows).all():
            raise _bad("values must be finite numbers")
        return rows

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        scores = ((rows - self.mean) / self.scale) @ self.coef.T + self.intercept
        scores -= scores.max(axis=1, keepdims=True)  # softmax without overflow
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: Any, features_names: list[str] | None = None) -> np.ndarray:
        proba = self.predict_proba(self._rows(X))
        if self.output == "label":
            return np.asarray([self.class_names[i] for i in proba.argmax(axis=1)])
        return proba
