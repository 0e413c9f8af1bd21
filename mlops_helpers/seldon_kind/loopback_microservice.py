"""Seldon's own microservice, with every port bound to loopback instead of 0.0.0.0.

This file runs with the *Seldon environment's* python (it imports ``seldon_core``), never in
the workshop's environment; ``serving.microservice_argv`` builds its command line::

    .venvs/seldon/bin/python -P loopback_microservice.py MyModel --service-type MODEL \\
        --http-port 9000 --grpc-port 5000 --metrics-port 6000

seldon-core 1.18.2 binds all three of its servers to every interface, with no flag or
environment variable to change it (in a cluster the pod network is the boundary):

- REST: ``_make_rest_server_prod`` passes gunicorn ``bind="0.0.0.0:<http port>"``;
- metrics: ``_make_rest_metrics_server`` passes gunicorn ``bind="0.0.0.0:<metrics port>"``;
- gRPC: ``_make_grpc_server`` reserves the port on ``""`` and each worker calls
  ``add_insecure_port("0.0.0.0:<grpc port>")``;
- ``--debug`` runs Flask's ``app.run(host="0.0.0.0")`` for REST and metrics.

Its gunicorn applications derive from ``BaseApplication``, which reads neither
``GUNICORN_CMD_ARGS`` nor a ``gunicorn.conf.py``. So this launcher rewrites the host of each
of those binds (the ports stay seldon's), then runs seldon's unchanged ``main()``. On a
laptop or a shared workshop server nothing a notebook starts is reachable from the network.
The servers are forked (seldon passes closures to ``multiprocessing``, which only ``fork``
can start), so the rewrites hold in every child process too. The local backend does not run
this file itself: its warm launcher (``warm_launcher.py``) forks a child per model server
that calls ``main()`` below, with the same arguments.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

from flask import Flask
from seldon_core import gunicorn_utils, microservice

HOST = os.environ.get("SELDON_BIND_HOST", "127.0.0.1")


def on_host(address: str) -> str:
    """``0.0.0.0:9000`` -> ``127.0.0.1:9000``."""
    return f"{HOST}:{address.rsplit(':', 1)[1]}"


_gunicorn_load_config = gunicorn_utils.StandaloneApplication.load_config


def _load_config(self: Any) -> None:  # REST and metrics: both are StandaloneApplications
    _gunicorn_load_config(self)
    self.cfg.set("bind", [on_host(address) for address in self.cfg.bind])


_grpc_worker = microservice._run_grpc_server


def _run_grpc_server(
    user_object: Any, seldon_metrics: Any, args: Any, annotations: Any, bind_address: str
) -> None:
    _grpc_worker(user_object, seldon_metrics, args, annotations, on_host(bind_address))


@contextlib.contextmanager
def _reserve_grpc_port(grpc_port: int) -> Iterator[int]:
    """seldon's reservation (SO_REUSEPORT, shared with the workers), on ``HOST`` only."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((HOST, grpc_port))
        yield int(sock.getsockname()[1])


_flask_run = Flask.run


def _flask_run_on_host(
    self: Flask, host: str | None = None, port: int | None = None, **options: Any
) -> None:
    _flask_run(self, HOST, port, **options)


def main() -> None:
    multiprocessing.set_start_method("fork", force=True)
    gunicorn_utils.StandaloneApplication.load_config = _load_config  # type: ignore[method-assign]
    microservice._run_grpc_server = _run_grpc_server
    microservice._reserve_grpc_port = _reserve_grpc_port
    Flask.run = _flask_run_on_host  # type: ignore[method-assign]
    sys.argv[0] = "seldon-core-microservice"
    microservice.main()


if __name__ == "__main__":
    main()
