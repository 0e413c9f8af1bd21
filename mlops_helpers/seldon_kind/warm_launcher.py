"""A warm launcher for the local model servers, in the *Seldon environment*.

Each model server still runs in its own process, on its own loopback port, in its own
model folder, with its own log; what changes is how that process begins. A fresh interpreter
spends most of a second importing seldon-core, Flask and scikit-learn before the server
answers. This launcher imports them once; each server is forked from it and then runs
seldon's unchanged microservice (through ``loopback_microservice.main``), in its own
session, so stopping it stops only it. gunicorn's ``--preload`` works the same way. Where
servers spawn (macOS, ``MLOPS_START=spawn``) each is ``python -P warm_launcher.py --child
REQUEST`` instead, running the same code.

    POST /start {"args": [...], "cwd": dir, "env": {"NAME": "value"}, "port": 9000, "log": file}

``args`` are seldon-core-microservice's arguments (``MyModel --service-type MODEL
--http-port {port} ...``; ``{port}`` becomes ``port``); ``env`` is added to the child's
environment (``PREDICTIVE_UNIT_PARAMETERS``). The integration test's client (``python
e2e_seldon_client.py TARGETS``) is started the same way: ``args`` then start with ``python``
and the script, and the child runs it as ``python`` would, its output in ``log``; it imports
``SeldonClient``, which the launcher has imported.
Run: ``.venvs/seldon/bin/python -P warm_launcher.py PORT`` (``launcher_client.py`` does); the
launcher itself is ``mlops_helpers/fork_launcher.py``, shared with continuous_x.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
# seldon's microservice and what the model folders import (and their pickles need)
WARM = (
    "seldon_core.microservice",
    "seldon_core.flask_utils",
    "flask",
    "joblib",
    "numpy",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.feature_extraction.text",
    # the integration test's client
    "seldon_core.seldon_client",
    "requests",
    "google.protobuf.json_format",
)
#: ``args`` that start with this run a script (``python SCRIPT ARG ...``), not a model server
SCRIPT = "python"
FIELDS = {"args": list, "cwd": str, "env": dict}  # and the port and log every launcher takes


def _load(path: Path) -> ModuleType:
    """A module from its file (``-P`` keeps this folder off sys.path, so model modules cannot
    be shadowed by this package's files, and the package is not importable here)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses and typing look a module up by name
    spec.loader.exec_module(module)
    return module


fork_launcher = _load(HERE.parent / "fork_launcher.py")


def check(request: dict) -> str | None:
    """Why ``request`` cannot start a server, or None."""
    if not all(isinstance(a, str) for a in request["args"]) or not request["args"]:
        return "args must be a non-empty list of strings"
    if request["args"][0] == SCRIPT and not (
        len(request["args"]) > 1 and os.path.isfile(request["args"][1])
    ):
        return "python needs the path of a script"
    if not os.path.isdir(request["cwd"]):
        return f"no model folder at {request['cwd']}"
    return None


def serve_model(request: dict) -> None:
    """In the forked (or spawned) child: become seldon's microservice for the request's
    ``args`` (or ``python SCRIPT ...``)."""
    fork_launcher.become(request["log"], request["cwd"], request["env"])
    if request["args"][0] == SCRIPT:
        sys.argv = request["args"][1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
        return
    port = str(request["port"])
    sys.argv = ["seldon-core-microservice", *(a.replace("{port}", port) for a in request["args"])]
    _load(HERE / "loopback_microservice.py").main()


if __name__ == "__main__":
    command = [sys.executable, "-P", str(HERE / "warm_launcher.py")]
    fork_launcher.Launcher(WARM, FIELDS, check, serve_model, command).main(sys.argv[1:])
