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
from flask import Blueprint, jsonify
from seldon_core.flask_utils import SeldonMicroserviceException
from werkzeug.exceptions import HTTPException

MODEL_FILE = "model.json"
OUTPUTS = ("proba", "label")


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


class LinearServer:
    model_error_handler = json_errors()

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
        except OverflowError:  # an integer of hundreds of digits
            raise _bad("a value is too large to be a number this model reads") from None
        n = self.mean.size
        if rows.ndim == 1 and rows.size == n:
            rows = rows.reshape(1, -1)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != n:
            raise _bad(f"expected rows of {n} numbers, got shape {rows.shape}")
        if not np.isfinite(rows).all():
            raise _bad("values must be finite numbers")
        return rows

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            scores = ((rows - self.mean) / self.scale) @ self.coef.T + self.intercept
        if not np.isfinite(scores).all():  # e.g. 1e308: finite, but its score is not
            raise _bad("a value is too far out of range for this model to score")
        scores -= scores.max(axis=1, keepdims=True)  # softmax without overflow
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: Any, features_names: list[str] | None = None) -> np.ndarray:
        proba = self.predict_proba(self._rows(X))
        if self.output == "label":
            return np.asarray([self.class_names[i] for i in proba.argmax(axis=1)])
        return proba
