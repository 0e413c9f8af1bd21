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
from flask import Blueprint, jsonify
from seldon_core.flask_utils import SeldonMicroserviceException
from werkzeug.exceptions import HTTPException

MODEL_FILE = "model.joblib"
METHODS = ("predict_proba", "predict")


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


class SKLearnServer:
    model_error_handler = json_errors()

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
        except OverflowError:  # an integer of hundreds of digits
            raise _bad("a value is too large to be a number this model reads") from None
        if rows.ndim == 1 and rows.size == self.n_features:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != self.n_features:
            raise _bad(f"expected rows of {self.n_features} numbers, got shape {rows.shape}")
        if not np.isfinite(rows).all():
            raise _bad("values must be finite numbers")
        return rows

    def predict(self, X: Any, features_names: list[str] | None = None) -> np.ndarray:
        rows = self._rows(X)
        score = self.model.predict_proba if self.method == "predict_proba" else self.model.predict
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                result = np.asarray(score(rows))
        except ValueError as exc:  # the pipeline's scaler turned 1e308 into inf
            raise _bad(f"a value is too far out of range for this model: {exc}") from None
        if result.dtype.kind == "f" and not np.isfinite(result).all():
            raise _bad("a value is too far out of range for this model to score")
        return result
