"""A real MLflow tracking server (SQLite + local artifacts) as a managed local server."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

from mlops_helpers.errors import MissingExtraError
from mlops_helpers.extras import is_installed
from mlops_helpers.mlflow_store import seed_store
from mlops_helpers.resources import ResourceTracker
from mlops_helpers.servers import ManagedServer, start_server

# Measured here: with job execution off and one worker, the server is healthy in ~5 s,
# instead of ~14 s and eight huey workers (and in ~3 s without mlflow server's own launcher
# process, below).
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
# MLflow's tracking server is the ASGI app below, run by uvicorn. ``mlflow server`` is a
# launcher for it: a process that imports MLflow (about 3 s of CPU here) only to pass its
# options to a uvicorn worker in these environment variables and wait. We start that worker
# directly, with what ``mlflow server`` would give it for the options in worker_env();
# tests/continuous_x/test_infrastructure.py checks both against MLflow's own launcher.
APP = "mlflow.server.fastapi_app:app"


def worker_env(backend_store_uri: str, artifacts_destination: Path) -> dict[str, str]:
    """The environment ``mlflow server --backend-store-uri URI --artifacts-destination DIR
    --workers 1`` gives its uvicorn worker (mlflow/server/__init__.py, ``_run_server``)."""
    return {
        "_MLFLOW_SERVER_FILE_STORE": backend_store_uri,
        "_MLFLOW_SERVER_REGISTRY_STORE": backend_store_uri,  # the registry in the same store
        "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",  # artifacts via the server
        "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
        "_MLFLOW_SERVER_ARTIFACT_DESTINATION": str(artifacts_destination),
        "MLFLOW_SERVER_SECRETS_CACHE_TTL": "60",  # the launcher's defaults
        "MLFLOW_SERVER_SECRETS_CACHE_MAX_SIZE": "1000",
        "_MLFLOW_SERVER_BOOT_ID": uuid.uuid4().hex,
        "_MLFLOW_IN_JOB_EXECUTOR": "false",
        "_MLFLOW_SGI_NAME": "uvicorn",
        "MLFLOW_ENABLE_WORKSPACES": "false",
    }


def worker_argv(host: str, port: str) -> list[str]:
    """The uvicorn command ``mlflow server --host HOST --port PORT --workers 1`` runs."""
    spec = importlib.util.find_spec("mlflow")  # found, not imported
    package = Path(next(iter(spec.submodule_search_locations or ()))) if spec else Path()
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--log-config",
        str(package / "server" / "uvicorn_log_config.yaml"),
        "--host",
        host,
        "--port",
        port,
        "--workers",
        "1",
        APP,
    ]


def start_mlflow_server(
    run_dir: Path,
    tracker: ResourceTracker | None = None,
    name: str = "mlflow",
    timeout: float = 90.0,
    port: int | None = None,
) -> ManagedServer:
    """Start MLflow's tracking server on ``port`` (a free loopback one by default), storing
    everything under run_dir. Knowing the port up front lets clients start alongside it."""
    # found, not imported: importing mlflow here (~1.5 s of CPU) would only delay the
    # server, which imports it in its own process
    if not is_installed("mlflow"):
        raise MissingExtraError("mlflow", "mlflow")
    store = Path(run_dir) / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    seed_store(store / "mlflow.db")  # an empty store's copy: the server skips the migrations
    env = {**SERVER_ENV, **worker_env(f"sqlite:///{store / 'mlflow.db'}", store / "artifacts")}
    return start_server(
        name,
        worker_argv("127.0.0.1", "{port}"),
        run_dir=run_dir,
        tracker=tracker,
        port=port,
        health_path="/health",
        env=env,
        timeout=timeout,
        interval=0.05,
    )
