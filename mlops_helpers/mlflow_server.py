"""A real MLflow tracking server (SQLite + local artifacts) as a managed local server."""

from __future__ import annotations

import sys
from pathlib import Path

from mlops_helpers.errors import MissingExtraError
from mlops_helpers.extras import is_installed
from mlops_helpers.mlflow_store import seed_store
from mlops_helpers.resources import ResourceTracker
from mlops_helpers.servers import ManagedServer, start_server

# Measured here: with job execution off and one worker, the server is healthy in ~5 s
# with two processes, instead of ~14 s and eight huey workers.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def start_mlflow_server(
    run_dir: Path, tracker: ResourceTracker | None = None, name: str = "mlflow",
    timeout: float = 90.0, port: int | None = None,
) -> ManagedServer:
    """Start ``mlflow server`` on ``port`` (a free loopback one by default), storing
    everything under run_dir. Knowing the port up front lets clients start alongside it."""
    # found, not imported: importing mlflow here (~1.5 s of CPU) would only delay the
    # server, which imports it in its own process
    if not is_installed("mlflow"):
        raise MissingExtraError("mlflow", "mlflow")
    store = Path(run_dir) / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    seed_store(store / "mlflow.db")  # an empty store's copy: the server skips the migrations
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination", str(store / "artifacts"),
        "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
    ]
    return start_server(name, argv, run_dir=run_dir, tracker=tracker, port=port,
                        health_path="/health", env=SERVER_ENV, timeout=timeout)
