"""A warm runtime for the local deployments (see ``mlops_helpers/fork_launcher.py``).

A fresh interpreter spends about two seconds importing FastAPI, uvicorn, scikit-learn and
skops before a deployment answers. The local backend starts this launcher when the
deployment space is made (it warms up on the other core while the model is stored); each
(re)deploy forks it (or spawns ``python -m mlops_helpers.watson_openscale.launcher --child
REQUEST``), and the child serves the version with ``scoring_app.serve``, exactly as
``python -m mlops_helpers.watson_openscale.scoring_app`` would, in its own session, with its
own log and port.

    POST /start {"model_dir": dir, "store": monitor.db, "deployment_id": id,
                 "deployment_name": name, "model_version": "1", "port": 8123, "log": file}

Run: ``python -m mlops_helpers.watson_openscale.launcher PORT RUN_DIR`` (the local backend
does; the run directory on its command line marks it as that run's process).
"""

from __future__ import annotations

import os
import sys

from mlops_helpers.fork_launcher import Launcher, Request, become

# what scoring_app and loading a skops model import (skops.io imports scikit-learn's
# estimators); numpy's BLAS stays single-threaded: no thread pool may exist at fork
WARM = ("uvicorn", "fastapi", "yaml", "skops.io", "mlops_helpers.watson_openscale.scoring_app")
FIELDS = {
    "model_dir": str,
    "store": str,
    "deployment_id": str,
    "deployment_name": str,
    "model_version": str,
}  # and the port and log every launcher takes


def check(request: Request) -> str | None:
    """Why ``request`` cannot start a deployment, or None."""
    if not os.path.isfile(os.path.join(request["model_dir"], "MLmodel")):
        return f"no MLflow model (MLmodel) at {request['model_dir']}"
    return None


def serve_deployment(request: Request) -> None:
    """In the forked (or spawned) child: become the deployment's scoring server."""
    from pathlib import Path

    from mlops_helpers.watson_openscale import scoring_app

    become(request["log"], os.path.dirname(request["log"]), {})
    scoring_app.serve(
        Path(request["model_dir"]),
        Path(request["store"]),
        request["deployment_id"],
        request["deployment_name"],
        request["model_version"],
        request["port"],
    )


if __name__ == "__main__":
    command = [sys.executable, "-m", __spec__.name]
    Launcher(WARM, FIELDS, check, serve_deployment, command).main(sys.argv[1:])
