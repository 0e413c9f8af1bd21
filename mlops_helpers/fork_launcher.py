"""A warm launcher: one process imports a server's heavy libraries once and forks each server.

A fresh interpreter spends a second or more importing scikit-learn, Flask or FastAPI before
a model server answers; a notebook run starts many. A launcher imports them once; each
server is forked from it and then runs its usual code in its own session, with its own log,
working folder and port, so stopping it stops only it. gunicorn's ``--preload`` works the
same way. Used by continuous_x's servers (``continuous_x/launcher.py``), seldon_kind's model
servers (``seldon_kind/warm_launcher.py``, in the Seldon environment) and watson_openscale's
deployments (``watson_openscale/launcher.py``); ``launcher_client.py`` is their client.

    GET  /health                          -> 200 {"status": "ok", "start": "fork"}
    POST /start {fields of the launcher, "port": 8123, "log": file}
                                          -> 201 {"pid": 4242}; 400/404 {"error": ...}

Fork or spawn (``start_method``): on macOS a process that forks after Apple's frameworks
were loaded in it (urllib's proxy lookup loads them) can crash in the child, so there, or
wherever ``MLOPS_START=spawn`` is set, the launcher imports nothing heavy and starts each
server as a fresh interpreter (``LAUNCHER --child REQUEST``) that runs the same code from the
same request: the same session, log, folder, environment and port, only slower to answer.

Standard library only: the Seldon environment loads this file by its path.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

Request = dict[str, Any]
#: every launcher's requests carry these: the server's port and the file it logs to
COMMON_FIELDS: dict[str, type] = {"port": int, "log": str}
START_METHODS = ("fork", "spawn")
#: the first argument of a spawned server's command line; the request (JSON) follows it
CHILD = "--child"


def start_method() -> str:
    """How servers start: ``MLOPS_START`` (fork or spawn) if set; else spawn on macOS (no
    fork after Apple's frameworks are loaded), fork elsewhere."""
    chosen = os.environ.get("MLOPS_START", "").strip().lower()
    if not chosen:
        return "spawn" if sys.platform == "darwin" else "fork"
    if chosen not in START_METHODS:
        raise ValueError(f"MLOPS_START must be fork or spawn, not {chosen!r}")
    return chosen


def become(log: str, cwd: str, env: Mapping[str, str]) -> None:
    """In a forked or spawned child: own session, output to ``log``, ``env`` added, working
    in ``cwd`` (also first on sys.path, as for ``python`` run there)."""
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
    """In a forked or spawned child: run the server; never returns (exit status 0, or why
    it ended)."""
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


def common_check(request: Request) -> str | None:
    """Why a request's shared fields cannot start a server, or None."""
    if not 1024 <= request["port"] <= 65535:
        return f"port {request['port']} is not between 1024 and 65535"
    if not os.path.isdir(os.path.dirname(request["log"]) or "."):
        return f"no folder for the log {request['log']}"
    env = request.get("env", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        return "env must map names to text"
    return None


def spawn(command: Sequence[str], request: Request) -> int:
    """``command --child REQUEST`` as a fresh interpreter (posix_spawn: no fork of this
    process), its output in the request's log from its first line; its pid."""
    return os.posix_spawn(
        command[0],
        [*command, CHILD, json.dumps(request)],
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
    )


@dataclass(frozen=True)
class Launcher:
    """What one launcher starts: a valid request (``fields`` and the common ones of the right
    types, and ``check`` finding nothing wrong) becomes a server running ``serve(request)``;
    forked, that child has ``warm`` imported already; spawned, it is ``command --child
    REQUEST`` (``command`` runs this launcher's file again as a fresh interpreter)."""

    warm: Iterable[str]
    fields: Mapping[str, type]
    check: Callable[[Request], str | None]
    serve: Callable[[Request], None]
    command: Sequence[str]

    def main(self, argv: Sequence[str]) -> None:
        """The launcher's command line: ``PORT [...]`` answers start requests on that port;
        ``--child REQUEST`` is one spawned server."""
        if argv and argv[0] == CHILD:
            request = json.loads(argv[1])
            run_child(lambda: self.serve(request))
        serve_forever(self, int(argv[0]))


def serve_forever(launcher: Launcher, port: int) -> None:
    """Answer ``launcher``'s start requests on 127.0.0.1:``port``, one at a time."""
    method = start_method()
    if method == "fork":
        for module in launcher.warm:
            importlib.import_module(module)
        # what the imports made lives as long as every server: out of the garbage collector's
        # sight, each server's collections walk only its own objects (and leave the shared
        # pages shared) instead of the whole of MLflow or scikit-learn on every full pass
        gc.freeze()
    fields = {**launcher.fields, **COMMON_FIELDS}

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
                self._answer(200, {"status": "ok", "start": method})
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
            error = f"wrong type for {wrong}" if wrong else common_check(request)
            error = error or launcher.check(request)
            if error:
                self._answer(400, {"error": error})
                return
            if method == "spawn":
                try:
                    self._answer(201, {"pid": spawn(launcher.command, request)})
                except OSError as exc:
                    self._answer(500, {"error": f"could not start a server: {exc}"})
                return
            pid = os.fork()
            if pid == 0:  # the child: let go of the launcher's sockets, then serve
                self.connection.close()
                self.server.socket.close()
                run_child(lambda: launcher.serve(request))
            self._answer(201, {"pid": pid})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the servers log to their own files

    signal.signal(signal.SIGCHLD, _reap)
    # one request at a time, in one thread: fork() copies only the calling thread
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
