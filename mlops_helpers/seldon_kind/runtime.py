"""The Seldon runtime: a separate virtual environment holding seldon-core.

seldon-core pins old Flask, numpy<2 and protobuf<4, so it lives in its own environment, as
it would in its own container image. It is created once under ``.venvs/seldon`` and reused
while its requirements file is unchanged (a stamp holds the file's hash).

To serve a model class with it, start the microservice in the folder that holds the class's
module (``MyModel.py`` defining ``class MyModel`` with ``predict(X, features_names)``)::

    python = ensure_seldon_runtime()
    start_server("iris", [str(python), "-m", "seldon_core.microservice", "MyModel",
                          "--service-type", "MODEL", "--http-port", "{port}",
                          "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
                 run_dir=..., cwd=model_folder, health_path="/health/ping")
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from mlops_helpers import paths
from mlops_helpers.errors import StageError

REQUIREMENTS = "scenarios/seldon_kind/runtime-requirements.txt"
INSTALL_TIMEOUT_S = 900


def requirements_file() -> Path:
    return paths.project_root() / REQUIREMENTS


def runtime_dir() -> Path:
    return paths.project_root() / ".venvs" / "seldon"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv: list[str], log: Path, what: str) -> None:
    with open(log, "ab") as out:
        try:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=INSTALL_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StageError(f"{what} took more than {INSTALL_TIMEOUT_S}s; see {log}") from exc
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise StageError(f"{what} failed (exit {done.returncode}); last lines of {log}:\n{tail}")


def ensure_seldon_runtime(log: Path | None = None) -> Path:
    """The python of the Seldon environment, created on first use and then reused."""
    venv = runtime_dir()
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    requirements = requirements_file()
    wanted = _digest(requirements)
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return python
    log = log or venv.parent / "seldon-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)], log, "creating the Seldon environment")
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-r", str(requirements)], log, "installing seldon-core into .venvs/seldon")
    stamp.write_text(wanted)
    return python
