"""Training service: ``POST /train`` answers with the MLflow run id at once.

Training can take longer than an HTTP client waits, so the run is created first, its id
is returned, and the model trains in a background thread that logs parameters, metrics and
the model to that run. Callers poll the run's status in MLflow until it is terminal
(FINISHED, FAILED or KILLED). Bad hyperparameters fail the run, with the reason in the
run's ``error`` tag; nothing is registered from a failed run.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Literal

from fastapi import FastAPI
from http_errors import install_error_handlers
from pydantic import BaseModel, ConfigDict, Field
from splits import load_split

EXPERIMENT = os.environ.get("TRAINING_EXPERIMENT", "continuous-x")
# One training at a time: the fluent MLflow API keeps one active run per thread, and two
# CPU-bound fits on a small machine only slow each other down.
_TRAIN_LOCK = threading.Lock()

Scalar = int | float | str | bool | None


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Literal["iris", "wine", "breast_cancer", "digits"] = "iris"
    model_type: Literal["logistic_regression", "random_forest"] = "logistic_regression"
    params: dict[str, Scalar] = Field(default_factory=dict)


app = FastAPI(title="continuous-x training service")


install_error_handlers(app)


def _estimator(model_type: str, params: dict[str, Scalar]) -> Any:
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=0, **params)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**params)


def _train(run_id: str, request: TrainRequest) -> None:
    """Fit, log and end the run; any error ends it FAILED with the reason as a tag."""
    import mlflow
    import sklearn
    from sklearn.metrics import accuracy_score

    with _TRAIN_LOCK, mlflow.start_run(run_id=run_id):
        try:
            mlflow.log_params({"dataset": request.dataset, "model_type": request.model_type,
                               **request.params})
            X_train, X_test, y_train, y_test = load_split(request.dataset)
            model = _estimator(request.model_type, request.params)
            model.fit(X_train, y_train)
            mlflow.log_metrics({
                "train_accuracy": float(accuracy_score(y_train, model.predict(X_train))),
                "test_accuracy": float(accuracy_score(y_test, model.predict(X_test))),
            })
            # pickle keeps the serving app free of MLflow; explicit requirements skip
            # MLflow's slow requirement inference.
            info = mlflow.sklearn.log_model(
                model, name="model", serialization_format="pickle",
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
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(EXPERIMENT))
    run = client.create_run(experiment_id, tags={"mlflow.runName": f"train-{request.model_type}"})
    thread = threading.Thread(target=_train, args=(run.info.run_id, request), daemon=True)
    thread.start()
    return {"run_id": run.info.run_id, "experiment_id": experiment_id, "status": "RUNNING"}
