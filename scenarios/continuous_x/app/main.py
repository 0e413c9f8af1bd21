"""The model-serving app that every environment (staging, canary, production) runs.

A build puts this app next to one exact model version (``model/``, as MLflow exported it)
and a ``manifest.json`` naming that version and the build's content tag. The app reads them
once at start; ``/version`` says what it serves, so anyone can check an environment.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

BUNDLE_DIR = Path(os.environ.get("BUNDLE_DIR", Path(__file__).resolve().parent.parent))
ENVIRONMENT = os.environ.get("APP_ENVIRONMENT", "staging")


def load_model(model_dir: Path) -> Any:
    """The scikit-learn model of an MLflow model directory (pickle serialization)."""
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["sklearn"]
    if flavor.get("serialization_format") != "pickle":
        raise RuntimeError(f"model in {model_dir} is not pickled: {flavor}")
    with open(model_dir / flavor["pickled_model"], "rb") as handle:
        return pickle.load(handle)  # the bundle is ours: built from our own registry


MANIFEST: dict[str, Any] = json.loads((BUNDLE_DIR / "manifest.json").read_text())
MODEL = load_model(BUNDLE_DIR / "model")
N_FEATURES = int(getattr(MODEL, "n_features_in_", 0))
if N_FEATURES:  # warm up before answering: a first prediction costs several warm ones, and
    MODEL.predict([[0.0] * N_FEATURES])  # the canary gate would count it against this model


# NaN, Infinity, "nan", "inf" and integers too large for a float are refused (422): a
# model cannot score them, and NaN in an answer would not be JSON. Strict: a boolean or a
# numeric string ("5.1") is not a feature either.
Feature = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: list[Annotated[list[Feature], Field(max_length=10_000)]] = Field(
        min_length=1, max_length=1000
    )


app = FastAPI(title=f"continuous-x model app ({ENVIRONMENT})")


@app.exception_handler(RequestValidationError)
async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return JSONResponse(status_code=422, content={"error": f"invalid request: {problems}"})


@app.exception_handler(HTTPException)
async def _refused(_: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)})


@app.exception_handler(RecursionError)
async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
    return JSONResponse(status_code=400, content={"error": "request body nested too deep"})


@app.exception_handler(Exception)
async def _failed(_: Request, exc: Exception) -> JSONResponse:  # still JSON, never text
    return JSONResponse(status_code=500, content={"error": f"internal error: {type(exc).__name__}"})


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/version")
def version() -> dict[str, Any]:
    return {
        "environment": ENVIRONMENT,
        "model_name": MANIFEST["model_name"],
        "model_version": MANIFEST["model_version"],
        "tag": MANIFEST["tag"],
    }


@app.post("/predict", response_model=None)
def predict(request: PredictRequest) -> dict[str, Any] | JSONResponse:
    bad = [i for i, row in enumerate(request.instances) if len(row) != N_FEATURES]
    if bad:
        return JSONResponse(
            status_code=422,
            content={"error": f"each instance needs {N_FEATURES} features; rows {bad[:5]} do not"},
        )
    predictions = MODEL.predict(request.instances)
    return {
        "predictions": [int(p) for p in predictions],
        "model_version": MANIFEST["model_version"],
        "environment": ENVIRONMENT,
    }
