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
from flask import Blueprint, jsonify
from seldon_core.flask_utils import SeldonMicroserviceException
from werkzeug.exceptions import HTTPException

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_CHARS = 5000


def _bad(message: str) -> SeldonMicroserviceException:
    return SeldonMicroserviceException(message, status_code=400)


def _answer(status: int, message: str) -> tuple[Any, int]:
    """Seldon's own error body, with a 4xx status."""
    return jsonify(
        {"status": {"status": 1, "info": message, "code": -1, "reason": "MICROSERVICE_BAD_DATA"}}
    ), status


def json_errors() -> Blueprint:
    """Error handlers for what seldon-core's wrapper itself turns into a 500 (its catch-all
    handler wraps every exception): unknown paths and methods (404/405), JSON too deeply
    nested to parse, form fields or files that are not JSON or not UTF-8. Seldon registers
    this blueprint because the class has a ``model_error_handler`` attribute."""
    blueprint = Blueprint("json_errors", __name__)

    @blueprint.app_errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Any, int]:
        return _answer(exc.code or 400, exc.description or exc.name)

    @blueprint.app_errorhandler(RecursionError)
    def too_deep(_exc: RecursionError) -> tuple[Any, int]:
        return _answer(400, "the request is nested too deeply to parse")

    @blueprint.app_errorhandler(UnicodeDecodeError)
    @blueprint.app_errorhandler(json.JSONDecodeError)
    def not_json(exc: ValueError) -> tuple[Any, int]:
        return _answer(400, f"a field of the request is not JSON text: {exc}")

    return blueprint


class NewsClassifier:
    model_error_handler = json_errors()

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
            raise _bad(f"expected a list of texts (or rows of one text), got shape {items.shape}")
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
