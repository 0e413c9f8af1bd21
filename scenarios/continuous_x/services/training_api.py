"""Training service: ``POST /train`` answers with the MLflow run id at once.

Training can take longer than an HTTP client waits, so the run is created first, its id
is returned, and the model trains in a background thread that logs parameters, metrics and
the model to that run. Callers poll the run's status in MLflow until it is terminal
(FINISHED, FAILED or KILLED). Bad hyperparameters fail the run, with the reason in the
run's ``error`` tag; nothing is registered from a failed run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any, Literal

# MLflow and scikit-learn are imported when the service starts, not on the first request:
# the platform waits for the MLflow server's slower start anyway, so /train answers at once.
import mlflow
import mlflow.sklearn
import sklearn
from fastapi import FastAPI
from http_errors import install_error_handlers, mlflow_calls
from mlflow import MlflowClient
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from splits import load_split

EXPERIMENT = os.environ.get("TRAINING_EXPERIMENT", "continuous-x")
# One training at a time: the fluent MLflow API keeps one active run per thread, and two
# CPU-bound fits on a small machine only slow each other down.
_TRAIN_LOCK = threading.Lock()


# Each model type's knobs, with the ranges that can train: checked before the run exists,
# so a request that can never train is refused with 422 instead of accepted with 202.
class LogisticRegressionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    C: float = Field(1.0, gt=0, le=1e6, allow_inf_nan=False)
    max_iter: int = Field(500, ge=1, le=100_000)


class RandomForestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(50, ge=1, le=2000)
    max_depth: int | None = Field(None, ge=1, le=1000)


PARAMS = {"logistic_regression": LogisticRegressionParams, "random_forest": RandomForestParams}


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Literal["iris", "wine", "breast_cancer", "digits"] = "iris"
    model_type: Literal["logistic_regression", "random_forest"] = "logistic_regression"
    params: dict[str, Any] = Field(default_factory=dict, max_length=16)

    @model_validator(mode="after")
    def _known_params(self) -> TrainRequest:
        checked = PARAMS[self.model_type].model_validate(self.params)
        self.params = checked.model_dump(exclude_unset=True)
        return self

    def digest(self) -> str:
        """Same data set, model and knobs: the same digest (an identical run)."""
        full = PARAMS[self.model_type].model_validate(self.params).model_dump()
        text = json.dumps(
            {"dataset": self.dataset, "model_type": self.model_type, "params": full}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()


app = FastAPI(title="continuous-x training service")


install_error_handlers(app)


def _estimator(model_type: str, params: dict[str, Any]) -> Any:
    if model_type == "random_forest":
        return RandomForestClassifier(random_state=0, **params)
    return LogisticRegression(**params)


def _train(run_id: str, request: TrainRequest) -> None:
    """Fit, log and end the run; any error ends it FAILED with the reason as a tag."""
    with _TRAIN_LOCK, mlflow.start_run(run_id=run_id):
        try:
            mlflow.log_params(
                {"dataset": request.dataset, "model_type": request.model_type, **request.params}
            )
            X_train, X_test, y_train, y_test = load_split(request.dataset)
            model = _estimator(request.model_type, request.params)
            model.fit(X_train, y_train)
            mlflow.log_metrics(
                {
                    "train_accuracy": float(accuracy_score(y_train, model.predict(X_train))),
                    "test_accuracy": float(accuracy_score(y_test, model.predict(X_test))),
                }
            )
            # pickle keeps the serving app free of MLflow; explicit requirements skip
            # MLflow's slow requirement inference.
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="pickle",
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )
            mlflow.set_tag("model_uri", info.model_uri)
        except Exception as exc:  # the run records why it failed
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:4000])
            mlflow.end_run(status="FAILED")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/train", status_code=202)
def train(request: TrainRequest) -> dict[str, Any]:
    client = MlflowClient()
    with mlflow_calls():
        experiment = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = (
            experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
        )
        tags = {"mlflow.runName": f"train-{request.model_type}", "request_digest": request.digest()}
        run = client.create_run(experiment_id, tags=tags)
    thread = threading.Thread(target=_train, args=(run.info.run_id, request), daemon=True)
    thread.start()
    return {"run_id": run.info.run_id, "experiment_id": experiment_id, "status": "RUNNING"}
