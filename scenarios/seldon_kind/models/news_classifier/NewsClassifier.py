"""A custom server with its model embedded: the news classifier baked into the image.

``train.py`` writes ``model.joblib`` next to this file before the image is built, so the
image *is* the model version: a new model means a new image tag.
"""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_CHARS = 5000


def _bad(message: str) -> SeldonMicroserviceException:
    return SeldonMicroserviceException(message, status_code=400)


class NewsClassifier:
    def __init__(self, model_dir: str = HERE) -> None:
        path = os.path.join(model_dir, "model.joblib")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} is missing: run train.py before building")
        self.model = joblib.load(path)
        with open(os.path.join(model_dir, "meta.json")) as handle:
            self.meta = json.load(handle)
        self.class_names = [str(c) for c in self.model.classes_]

    @staticmethod
    def _texts(X: Any) -> list[str]:
        items = np.asarray(X, dtype=object)
        if items.ndim == 2 and items.shape[1] == 1:
            items = items[:, 0]
        if items.ndim == 0:
            items = items.reshape(1)
        if items.ndim != 1 or items.size == 0:
            raise _bad(f"expected a list of texts (or rows of one text), got shape "
                       f"{items.shape}")
        texts = []
        for item in items:
            if not isinstance(item, str):
                raise _bad(f"every item must be a text, got {type(item).__name__}")
            if not item.strip():
                raise _bad("empty text: nothing to classify")
            if len(item) > MAX_CHARS:
                raise _bad(f"text longer than {MAX_CHARS} characters")
            texts.append(item)
        return texts

    def predict(self, X: Any, features_names: list[str] | None = None) -> np.ndarray:
        return self.model.predict_proba(self._texts(X))
