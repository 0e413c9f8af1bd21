"""The client of a warm launcher (``fork_launcher.py``): how every scenario's local backend
starts its launcher, finds it again from another process, and asks it for a server.

A launcher outlives a stage (Jenkins runs each stage in a new process), so its address is
kept in the run's state under a key of the scenario's choosing, and it is tracked, so cleanup
stops it. Each server it starts gets a free port (unless one is given) and the log
``<run_dir>/logs/<name>.log``; the launcher forks it, or spawns it as a fresh interpreter
(``MLOPS_START``, macOS), and the caller gets it back tracked and healthy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_helpers import fork_launcher
from mlops_helpers.errors import ConfigError, ServerStartError, StageError, WaitTimeout
from mlops_helpers.resources import process_alive, process_start_time, stop_process_group
from mlops_helpers.servers import ManagedServer, free_port, http_json, start_server, wait_healthy
from mlops_helpers.waiting import wait_until

if TYPE_CHECKING:
    from mlops_helpers.pipeline import StageContext

#: a forked child must find no BLAS thread pool in its parent (it would have no threads
#: behind it); the servers score a row or a few, fit on a few hundred: one thread serves
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: a launcher and its servers answer within a second or two: a short poll serves them at once
POLL_S = 0.05
#: a spawned server first imports what a forked one had already: its bound grows with that
SPAWN_TIMEOUT_FACTOR = 2.0


def start_method() -> str:
    """``fork`` or ``spawn`` (see ``fork_launcher.start_method``); a clear error for a bad
    ``MLOPS_START``."""
    try:
        return fork_launcher.start_method()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class WarmLauncher:
    """One scenario's launcher, as its stages see it: ``argv`` (``{port}`` is replaced)
    started as ``name`` with ``env`` added, its record under ``key`` in the run's state."""

    def __init__(
        self,
        ctx: StageContext,
        key: str,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.ctx, self.key, self.name, self.argv = ctx, key, name, list(argv)
        self.env = {**SINGLE_THREADED, **(env or {}), "MLOPS_START": start_method()}
        self.timeout = timeout

    def server(self, wait: bool = True) -> ManagedServer:
        """The launcher, started if it does not run (then saved and tracked). ``wait``:
        until it answers; without it, the caller goes on while it starts."""
        known = self.ctx.state.get(self.key)
        server = ManagedServer.from_dict(known["server"]) if known else None
        if server is not None and known.get("start") != self.env["MLOPS_START"]:
            server.stop(self.ctx.tracker)  # MLOPS_START changed since it started
            server = None
        if server is None or not server.alive():
            server = start_server(
                self.name,
                self.argv,
                run_dir=self.ctx.run_dir,
                tracker=self.ctx.tracker,
                env=self.env,
                wait=False,
            )
            record = {"url": server.url, "server": server.to_dict()}
            self.ctx.state.update(**{self.key: {**record, "start": self.env["MLOPS_START"]}})
        if wait:
            wait_healthy(server, self.ctx.tracker, timeout=self.timeout, interval=POLL_S)
        return server

    def url(self) -> str:
        """The launcher's address, once it answers."""
        return self.server(wait=True).url

    def log_path(self, name: str) -> Path:
        path = self.ctx.run_dir / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _post(self, name: str, request: Mapping[str, Any]) -> int:
        status, body = http_json("POST", f"{self.url()}/start", dict(request), timeout=30)
        if status != 201:
            raise ServerStartError(f"the launcher could not start {name}: HTTP {status} {body}")
        return int(body["pid"])

    def start(
        self,
        name: str,
        request: Mapping[str, Any],
        port: int | None = None,
        health_path: str = "/health",
        timeout: float = 60.0,
    ) -> ManagedServer:
        """The server ``request`` describes (the launcher's own fields), on ``port`` (a free
        one if None), logging to ``logs/<name>.log``: tracked, and healthy when
        ``health_path`` answers 200; stopped, with its log's end in the error, when it exits
        or stays unhealthy for ``timeout`` seconds."""
        port = port or free_port()
        log_path = self.log_path(name)
        if self.env["MLOPS_START"] == "spawn":
            timeout *= SPAWN_TIMEOUT_FACTOR
        pid = self._post(name, {**request, "port": port, "log": str(log_path)})
        server = ManagedServer(name, pid, port, log_path, process_start_time(pid))
        tracker, log = self.ctx.tracker, str(log_path)
        tracker.add("process", name, pid=pid, start_time=server.start_time, port=port, log_path=log)
        return wait_healthy(server, tracker, health_path, timeout, POLL_S)

    def run(self, name: str, request: Mapping[str, Any], timeout: float) -> str:
        """A program (not a server) the launcher starts from ``request``; waits until it
        ends (``timeout`` at most, then it is stopped) and returns what it printed."""
        log_path = self.log_path(name)
        log_path.unlink(missing_ok=True)
        pid = self._post(name, {**request, "port": free_port(), "log": str(log_path)})
        started = process_start_time(pid)
        try:
            wait_until(
                lambda: not process_alive(pid, started),
                what=name,
                timeout=timeout,
                interval=0.02,
                progress=False,
            )
        except WaitTimeout as exc:
            stop_process_group(pid, started)
            raise StageError(f"{name} took more than {timeout:.0f}s") from exc
        return log_path.read_text(errors="replace") if log_path.is_file() else ""
