"""The online deployment: a FastAPI app serving one registered MLflow model version on loopback.

    python -m mlops_helpers.watson_openscale.scoring_app --model-dir DIR --store monitor.db \
        --deployment-id ID --deployment-name NAME --model-version V --port PORT

``DIR`` is the version's MLflow model as the registry gave it (``MLmodel``, the
scikit-learn flavor, and ``model-meta.json``): the very artifact
``mlflow.pyfunc.load_model("models:/<name>@deployed")`` loads. ``POST
/ml/v4/deployments/{id}/predictions`` takes a WML payload and answers predictions with class
probabilities. Once the deployment has a subscription, every valid request is written to the
payload log (once per content, as WML's own payload logging would); malformed input of any
kind gets a 4xx with a JSON message, and is not logged.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # at module level: FastAPI resolves the annotations
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mlops_helpers.watson_openscale import payload
from mlops_helpers.watson_openscale.monitor_store import MonitorStore
from mlops_helpers.watson_openscale.payload import SCORING_PATH


def refuse(status: int, message: str, code: str = "invalid_input") -> JSONResponse:
    return JSONResponse({"errors": [{"code": code, "message": message}]}, status_code=status)


def load_model(model_dir: Path) -> Any:
    """The scikit-learn estimator of an MLflow model folder, read as MLflow's own sklearn
    loader reads it: the ``sklearn`` flavor in ``MLmodel`` names the file and its format,
    and ``skops.io`` loads it with the flavor's trusted types. Without importing MLflow
    (a second of start-up per deployment); a test checks MLflow's loader agrees."""
    import skops.io
    import yaml

    flavors = yaml.safe_load((model_dir / "MLmodel").read_text()).get("flavors", {})
    flavor = flavors.get("sklearn")
    if flavor is None:
        raise ValueError(f"{model_dir} is not an MLflow scikit-learn model (no sklearn flavor)")
    if flavor.get("serialization_format") != "skops":  # pickle runs code on load: refused
        raise ValueError(
            f"{model_dir}: the model is saved as "
            f"{flavor.get('serialization_format')!r}; deployments load only skops"
        )
    return skops.io.load(
        model_dir / flavor["pickled_model"], trusted=flavor.get("skops_trusted_types")
    )


def create_app(
    model_dir: Path, store_path: Path, deployment_id: str, deployment_name: str, model_version: str
) -> FastAPI:
    import numpy as np

    meta = json.loads((model_dir / "model-meta.json").read_text())
    model = load_model(model_dir)
    features: list[str] = meta["feature_fields"]
    version = model_version
    store = MonitorStore(store_path, keep_open=True)
    app = FastAPI(
        title=f"deployment {deployment_name}", docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # 404 / 405 in the same envelope as every other refusal
        return refuse(
            exc.status_code,
            f"{request.method} {request.url.path}: {exc.detail}",
            code="not_found" if exc.status_code == 404 else "method_not_allowed",
        )

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ready",
            "deployment_id": deployment_id,
            "deployment_name": deployment_name,
            "model_name": meta["model_name"],
            "model_version": version,
        }

    @app.post(SCORING_PATH)
    async def score(request: Request) -> Any:
        start = time.perf_counter()
        wanted = request.path_params["deployment_id"]
        if wanted != deployment_id:
            return refuse(404, f"deployment {wanted} is not served here ({deployment_id} is)")
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if kind != "application/json":
            return refuse(415, f"send the payload as application/json, not {kind}")
        try:
            body = payload.loads(await request.body())
            rows = payload.parse(body, features)
        except payload.PayloadError as exc:
            return refuse(exc.status, str(exc))
        probabilities = model.predict_proba(np.asarray(rows, dtype=float))
        if not np.isfinite(probabilities).all():
            return refuse(422, "the model produced no finite probabilities for these values")
        labels = model.classes_[probabilities.argmax(axis=1)].tolist()
        answer = payload.response(labels, probabilities.round(6).tolist())
        if store.subscribed(deployment_id):  # like WML: only a subscription is logged
            source = request.headers.get("x-scoring-source", "client")[:20]
            store.log_payload(
                deployment_id=deployment_id,
                model_version=version,
                request=body,
                response=answer,
                n_rows=len(rows),
                response_time_ms=(time.perf_counter() - start) * 1000,
                source=source,
            )
        return answer

    return app


def serve(
    model_dir: Path,
    store: Path,
    deployment_id: str,
    deployment_name: str,
    model_version: str,
    port: int,
    host: str = "127.0.0.1",
) -> None:
    """Serve until stopped (run by ``main`` or in a process forked by ``launcher``)."""
    import uvicorn

    app = create_app(model_dir, store, deployment_id, deployment_name, model_version)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--deployment-id", required=True)
    parser.add_argument("--deployment-name", required=True)
    parser.add_argument("--model-version", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(
        args.model_dir,
        args.store,
        args.deployment_id,
        args.deployment_name,
        args.model_version,
        args.port,
        args.host,
    )


if __name__ == "__main__":
    main()
