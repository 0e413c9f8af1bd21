"""The Seldon runtime: a separate virtual environment holding seldon-core.

seldon-core pins old Flask, numpy<2 and protobuf<4, so it lives in its own environment, as
it would in its own container image. ``make install`` creates it under ``.venvs/seldon``
from its lock file (``requirements/seldon-runtime.lock.txt``, written by ``make lock`` from the
requirements file); it is reused while the lock is unchanged (a stamp holds the lock's hash).
A notebook or stage never installs packages: it asks for ``make install`` instead.

To serve a model class with it, start the microservice in the folder that holds the class's
module (``MyModel.py`` defining ``class MyModel`` with ``predict(X, features_names)``)::

    python = ensure_seldon_runtime()
    start_server("iris", [str(python), "-m", "seldon_core.microservice", "MyModel",
                          "--service-type", "MODEL", "--http-port", "{port}",
                          "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
                 run_dir=..., cwd=model_folder, health_path="/health/ping")
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mlops_helpers import paths
from mlops_helpers.errors import StageError

REQUIREMENTS = "scenarios/seldon_kind/runtime-requirements.txt"
LOCK = "requirements/seldon-runtime.lock.txt"
ENV_TOOL = "requirements/env.sh"
INSTALL_TIMEOUT_S = 900


def requirements_file() -> Path:
    return paths.project_root() / REQUIREMENTS


def lock_file() -> Path:
    return paths.project_root() / LOCK


def runtime_dir() -> Path:
    return paths.project_root() / ".venvs" / "seldon"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    with open(log, "ab") as out:
        try:
            done = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StageError(f"{what} took more than {INSTALL_TIMEOUT_S}s; see {log}") from exc
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise StageError(f"{what} failed (exit {done.returncode}); last lines of {log}:\n{tail}")


def ensure_seldon_runtime(log: Path | None = None, *, install: bool = False) -> Path:
    """The python of the Seldon environment that ``make install`` created.

    Missing or older than its lock: an error that says to run ``make install``, unless the
    caller (``make install`` itself, or a test fixture) passes ``install=True``.
    """
    return ensure_locked_env(runtime_dir(), LOCK, "Seldon runtime", log, install=install)


def ensure_locked_env(
    venv: Path, lock: str, what: str, log: Path | None = None, *, install: bool = False
) -> Path:
    """The python of a side environment (``venv``) holding exactly the lock file ``lock``
    (relative to the project root), reused while the lock is unchanged."""
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    lock_path = paths.project_root() / lock
    wanted = _digest(lock_path)

    def ready() -> bool:
        return python.exists() and stamp.is_file() and stamp.read_text().strip() == wanted

    if ready():
        return python
    if not install:
        raise StageError(
            f"the {what} ({venv}) is missing or older than {lock}: run `make install`"
            " in the project folder (it creates it once, in about a minute), then run again"
        )
    venv.parent.mkdir(parents=True, exist_ok=True)
    # one installer at a time: test workers, CLI stages and notebooks may all get here at once
    with open(venv.parent / f".{venv.name}.lock", "w") as lock_file_:
        fcntl.flock(lock_file_, fcntl.LOCK_EX)
        if ready():
            return python
        log = log or venv.parent / f"{venv.name}-install.log"
        # the same installer as .venv's (uv, else pip), with this interpreter's Python version
        _run(
            ["bash", str(paths.project_root() / ENV_TOOL), "sync", str(venv), str(lock_path)],
            log,
            f"installing {lock} into {venv}",
            env={**os.environ, "PYTHON": sys.executable},
        )
        stamp.write_text(wanted)
    return python


def install_main(label: str, ensure: Callable[..., Path], lock: object, folder: Path) -> int:
    """``make install`` for a locked environment: ``ensure()`` it, installing when it is not
    up to date, with one line of progress; 1 (and the reason) when the install fails."""
    start = time.monotonic()
    try:
        ensure()
        print(f"{label}: up to date ({folder})", flush=True)
        return 0
    except StageError:
        pass
    print(f"{label}: installing {lock} into {folder} ...", flush=True)
    try:
        ensure(install=True)
    except StageError as exc:
        print(f"{label}: {exc}", file=sys.stderr)
        return 1
    print(f"{label}: ready in {time.monotonic() - start:.0f}s", flush=True)
    return 0


def main() -> int:
    """``make install``: create or refresh the Seldon runtime."""
    return install_main("Seldon runtime", ensure_seldon_runtime, LOCK, runtime_dir())


if __name__ == "__main__":
    sys.exit(main())
