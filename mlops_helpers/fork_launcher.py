"""A warm launcher: one process imports a server's heavy libraries once and forks each server.

A fresh interpreter spends a second or more importing scikit-learn, Flask or FastAPI before
a model server answers; a notebook run starts many. A launcher imports them once; each
server is forked from it and then runs its usual code in its own session, with its own log,
working folder and port, so stopping it stops only it. gunicorn's ``--preload`` works the
same way. Used by continuous_x's servers (``continuous_x/launcher.py``), seldon_kind's model
servers (``seldon_kind/warm_launcher.py``, in the Seldon environment) and watson_openscale's
deployments (``watson_openscale/launcher.py``).

    GET  /health
    POST /start {fields of the launcher}  -> 201 {"pid": 4242}; 400/404 {"error": ...}

Standard library only: the Seldon environment loads this file by its path. It forks, so it
is used where ``os.fork`` exists (Linux, macOS, WSL2).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

Request = dict[str, Any]


def become(log: str, cwd: str, env: Mapping[str, str]) -> None:
    """In a forked child: own session, output to ``log``, ``env`` added, working in ``cwd``
    (also first on sys.path, as for ``python`` run there)."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.environ.update(env)
    os.chdir(cwd)
    sys.path.insert(0, cwd)


def run_child(serve: Callable[[], None]) -> None:
    """In a forked child: run the server; never returns (exit status 0, or why it ended)."""
    code = 1
    try:
        serve()
        code = 0
    except SystemExit as exc:  # servers exit non-zero on bad arguments or a failed start
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001  (the log says why; the caller sees the exit)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(_signum: int, _frame: Any) -> None:
    """Collect every server that ended (no zombies; its CPU time counts as the launcher's)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def serve_forever(
    port: int,
    warm: Iterable[str],
    fields: Mapping[str, type],
    check: Callable[[Request], str | None],
    serve: Callable[[Request], None],
) -> None:
    """Import ``warm``, then answer on 127.0.0.1:``port``: each valid start request (its
    ``fields`` of the right types, and ``check`` finding nothing wrong) forks a child that
    runs ``serve(request)``."""
    for module in warm:
        importlib.import_module(module)
    # what the imports made lives as long as every server: out of the garbage collector's
    # sight, each server's collections walk only its own objects (and leave the shared
    # pages shared) instead of the whole of MLflow or scikit-learn on every full pass
    gc.freeze()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            if self.path == "/health":
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"error": f"no such path: {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/start":
                self._answer(404, {"error": f"no such path: {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
                request = {name: body[name] for name in fields}
            except (ValueError, TypeError, KeyError) as exc:
                self._answer(400, {"error": f"a start request needs {sorted(fields)}: {exc}"})
                return
            wrong = [
                name
                for name, kind in fields.items()
                if not isinstance(request[name], kind) or isinstance(request[name], bool)
            ]
            error = f"wrong type for {wrong}" if wrong else check(request)
            if error:
                self._answer(400, {"error": error})
                return
            pid = os.fork()
            if pid == 0:  # the child: let go of the launcher's sockets, then serve
                self.connection.close()
                self.server.socket.close()
                run_child(lambda: serve(request))
            self._answer(201, {"pid": pid})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the servers log to their own files

    signal.signal(signal.SIGCHLD, _reap)
    # one request at a time, in one thread: fork() copies only the calling thread
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
