"""A warm launcher for the model apps on the local backend (see ``fork_launcher.py``).

Each environment's app still runs in its own process, on its own port, from its own build
directory; what changes is how that process begins. A fresh interpreter spends about a
second and a half importing scikit-learn, pandas (through scikit-learn) and FastAPI before
the app can answer. This launcher imports them once; each (re)deploy forks it, and the
child starts uvicorn on the build's ``app.main`` like ``python -m uvicorn`` would.

    POST /start {"bundle": dir, "environment": "canary", "port": 8123, "log": file}

Run: ``python -m mlops_helpers.continuous_x.launcher PORT`` (the local backend does).
"""

from __future__ import annotations

import os
import sys

from mlops_helpers.fork_launcher import Request, become, serve_forever

# what the app (scenarios/continuous_x/app/main.py) and unpickling its models import
WARM = ("uvicorn", "fastapi", "pydantic", "yaml", "sklearn.linear_model", "sklearn.ensemble")
FIELDS = {"bundle": str, "environment": str, "port": int, "log": str}


def check(request: Request) -> str | None:
    """Why ``request`` cannot start an app, or None."""
    if not os.path.isfile(os.path.join(request["bundle"], "manifest.json")):
        return f"no build (manifest.json) at {request['bundle']}"
    if not 1024 <= request["port"] <= 65535:
        return f"port {request['port']} is not between 1024 and 65535"
    return None


def serve_app(request: Request) -> None:
    """In the forked child: become the environment's app server."""
    bundle = request["bundle"]
    become(request["log"], bundle,
           {"BUNDLE_DIR": bundle, "APP_ENVIRONMENT": request["environment"]})
    import uvicorn

    # the same options the local backend gives ``python -m uvicorn``
    uvicorn.run("app.main:app", host="127.0.0.1", port=request["port"], log_level="warning",
                timeout_graceful_shutdown=3)


if __name__ == "__main__":
    serve_forever(int(sys.argv[1]), WARM, FIELDS, check, serve_app)
