"""A pre-built, reusable scikit-learn server: it serves whatever model its model URI holds.

Seldon passes the graph's ``modelUri`` (downloaded to a local folder by its storage
initializer) as the ``model_uri`` parameter; ``method`` picks ``predict_proba`` or
``predict``. The same image serves any scikit-learn model saved with joblib.
"""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException

MODEL_FILE = "model.joblib"
METHODS = ("predict_proba", "predict")


def _bad(message: str) -> SeldonMicroserviceException:
    return SeldonMicroserviceException(message, status_code=400)


class SKLearnServer:
    def __init__(self, model_uri: str = "", method: str = "predict_proba") -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        path = os.path.join(model_uri, MODEL_FILE) if os.path.isdir(model_uri) else model_uri
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no {MODEL_FILE} at model_uri {model_uri!r}")
        self.model = joblib.load(path)
        self.method = method
        meta_path = os.path.join(os.path.dirname(path), "meta.json")
        meta: dict[str, Any] = {}
        if os.path.isfile(meta_path):
            with open(meta_path) as handle:
                meta = json.load(handle)
        self.n_features = int(getattr(self.model, "n_features_in_", meta.get("n_features", 0)))
        self.class_names = [str(c) for c in meta.get("class_names", [])]

    def _rows(self, X: Any) -> np.ndarray:
        try:
            rows = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as exc:
            raise _bad(f"every value must be a number: {exc}") from None
        if rows.ndim == 1 and rows.size == self.n_features:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != self.n_features:
            raise _bad(f"expected rows of {self.n_features} numbers, got shape {rows.shape}")
        if not np.isfinite(rows).all():
            raise _bad("values must be finite numbers")
        return rows

    def predict(self, X: Any, features_names: list[str] | None = None) -> np.ndarray:
        rows = self._rows(X)
        if self.method == "predict_proba":
            return self.model.predict_proba(rows)
        return self.model.predict(rows)
