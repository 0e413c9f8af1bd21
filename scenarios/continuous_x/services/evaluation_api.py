"""Evaluation service: given a finished run, test its model and register it if it passes.

``POST /evaluate {"run_id": ...}`` loads the run's model, measures accuracy on the held-out
split and, when it reaches the pipeline's threshold, registers a new version of
``MODEL_NAME`` (or returns the version already registered from that run, so a retry does not
duplicate it).

The threshold is the pipeline's, never the caller's: a request cannot carry one. It is read
at each request from one place: ``GATE_FILE`` when the service has one (the local pipeline
writes it, and again each time its evaluate stage's gate runs), else ``MIN_ACCURACY`` from
the service's own environment (its Kubernetes Deployment). The service has no default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# imported when the service starts (while the MLflow server starts), not on the first request
import mlflow
import mlflow.sklearn
from fastapi import FastAPI, HTTPException
from http_errors import install_error_handlers, mlflow_calls
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import accuracy_score
from splits import load_split

MODEL_NAME = os.environ.get("MODEL_NAME", "continuous-x-model")
GATE_FILE = os.environ.get("GATE_FILE", "")
MIN_ACCURACY = os.environ.get("MIN_ACCURACY", "")


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-zA-Z]+$")


def threshold() -> float:
    """The pipeline's threshold now: its gate file when the service has one, else
    MIN_ACCURACY. One that is missing, unreadable or no fraction fails closed (503, nothing
    passes)."""
    where = f"the pipeline's gate file {GATE_FILE}" if GATE_FILE else "MIN_ACCURACY"
    try:
        raw = json.loads(Path(GATE_FILE).read_text())["min_accuracy"] if GATE_FILE else MIN_ACCURACY
        value = float(raw)
    except (OSError, ValueError, KeyError, TypeError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise HTTPException(503, f"{where} holds no threshold in [0, 1]")
    return value


app = FastAPI(title="continuous-x evaluation service")


install_error_handlers(app)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def _finished_run(client: Any, run_id: str) -> Any:
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise HTTPException(404, f"run {run_id} does not exist") from None
    if run.info.status != "FINISHED":
        raise HTTPException(
            409, f"run {run_id} is {run.info.status}; only FINISHED runs are evaluated"
        )
    if "model_uri" not in run.data.tags:
        raise HTTPException(409, f"run {run_id} logged no model")
    return run


@app.post("/evaluate")
def evaluate(request: EvaluateRequest) -> dict[str, Any]:
    client = MlflowClient()
    with mlflow_calls():
        return _evaluate(client, request)


def _evaluate(client: Any, request: EvaluateRequest) -> dict[str, Any]:
    run = _finished_run(client, request.run_id)
    model = mlflow.sklearn.load_model(run.data.tags["model_uri"])
    _, X_test, _, y_test = load_split(run.data.params.get("dataset", "iris"))
    accuracy = float(accuracy_score(y_test, model.predict(X_test)))
    client.log_metric(request.run_id, "eval_accuracy", accuracy)
    needed = threshold()
    answer: dict[str, Any] = {
        "run_id": request.run_id,
        "metric": "accuracy",
        "accuracy": accuracy,
        "threshold": needed,
        "passed": accuracy >= needed,
        "new_model_version": None,
        "identical_to": None,
    }
    if not answer["passed"]:
        return answer
    existing = client.search_model_versions(f"name='{MODEL_NAME}' and run_id='{request.run_id}'")
    if existing:
        answer["new_model_version"] = str(existing[0].version)
        return answer
    digest = run.data.tags.get("request_digest")
    same = _version_with_digest(client, digest) if digest else None
    if same is not None:  # an identical run: the model it would register exists already
        answer["new_model_version"] = same
        answer["identical_to"] = same
        return answer
    version = mlflow.register_model(
        run.data.tags["model_uri"], MODEL_NAME, tags={"request_digest": digest or ""}
    )
    answer["new_model_version"] = str(version.version)
    return answer


def _version_with_digest(client: Any, digest: str) -> str | None:
    """The registered version trained from an identical request, if any."""
    for version in client.search_model_versions(f"name='{MODEL_NAME}'"):
        if (version.tags or {}).get("request_digest") == digest:
            return str(version.version)
    return None
