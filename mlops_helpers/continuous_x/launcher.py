"""A warm launcher for the local backend's servers (see ``fork_launcher.py``): the training
and evaluation services, each environment's model app and the canary router.

Each of them still runs in its own process, on its own port, from its own folder (the
services' folder, or the build's), with its own log; what changes is how that process
begins. A fresh interpreter spends one to three seconds importing MLflow, scikit-learn and
FastAPI before a service or an app can answer, and the platform starts two services beside
the MLflow server on a two-core machine. This launcher imports them once; each start forks
it, and the child runs uvicorn on the server's module like ``python -m uvicorn`` would (or,
spawning, a fresh ``python -m mlops_helpers.continuous_x.launcher --child REQUEST`` does).

    POST /start {"app": "training_api:app", "cwd": dir, "env": {...}, "port": 8123,
                 "log": file}

Run: ``python -m mlops_helpers.continuous_x.launcher PORT`` (the local backend does).
"""

from __future__ import annotations

import os
import sys

from mlops_helpers.fork_launcher import Launcher, Request, become

# what the services (scenarios/continuous_x/services), the app (app/main.py, and
# unpickling its models) and the router import, and what MLflow imports on a service's
# first run (logging and loading a model: about 0.6 s of CPU in each service otherwise);
# not the router module itself, which reads its routes file's name when imported
WARM = (
    "uvicorn",
    "fastapi",
    "pydantic",
    "yaml",
    "httpx",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.datasets",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.pyfunc",
    "mlflow.tracking.request_header.registry",
    "mlflow.models.display_utils",
    "pydantic.v1",
    "git",
    "IPython",
)
FIELDS = {"app": str, "cwd": str, "env": dict}  # and the port and log every launcher takes
# the only servers it starts: the two services (run in their folder), a build's app (run
# in the build) and the router
SERVICE_APPS = ("training_api:app", "evaluation_api:app")
BUILD_APP = "app.main:app"
ROUTER_APP = "mlops_helpers.continuous_x.router:app"
APPS = (*SERVICE_APPS, BUILD_APP, ROUTER_APP)


def check(request: Request) -> str | None:
    """Why ``request`` cannot start a server, or None."""
    app, cwd = request["app"], request["cwd"]
    if app not in APPS:
        return f"unknown app {app!r}; known: {', '.join(APPS)}"
    if not os.path.isdir(cwd):
        return f"no folder {cwd}"
    if app == BUILD_APP and not os.path.isfile(os.path.join(cwd, "manifest.json")):
        return f"no build (manifest.json) at {cwd}"
    return None


def serve_app(request: Request) -> None:
    """In the forked (or spawned) child: become the server (its folder, log and environment)."""
    become(request["log"], request["cwd"], request["env"])
    import uvicorn

    # the same options the local backend gives ``python -m uvicorn``: a bounded graceful
    # shutdown, so SIGTERM ends the server even with a request in flight
    uvicorn.run(
        request["app"],
        host="127.0.0.1",
        port=request["port"],
        log_level="warning",
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    Launcher(WARM, FIELDS, check, serve_app, [sys.executable, "-m", __spec__.name]).main(
        sys.argv[1:]
    )
