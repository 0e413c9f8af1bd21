"""Local HTTP servers: started on a free loopback port, health-checked, logged, stopped.

Each server gets its own session (process group) so that its children (gunicorn or
uvicorn workers, mlflow's job runners) stop with it, on Linux and macOS alike.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_helpers.errors import ServerStartError, WaitTimeout
from mlops_helpers.resources import (
    ResourceTracker,
    group_members,
    process_alive,
    process_start_time,
    remember_child,
    stop_process_group,
)
from mlops_helpers.waiting import wait_until

LOOPBACK = "127.0.0.1"


_HANDED_OUT: dict[int, float] = {}  # port -> when free_port gave it, in this process
_HANDED_OUT_LOCK = threading.Lock()
_HANDED_OUT_FOR_S = 60.0  # long enough for a server to start and bind it


def free_port(host: str = LOOPBACK) -> int:
    """A port that is free on ``host`` right now (the OS picks it), and that this process
    has not handed out in the last minute: servers started side by side get distinct
    ports even though none of them has bound its port yet."""
    with _HANDED_OUT_LOCK:
        now = time.monotonic()
        for port, since in list(_HANDED_OUT.items()):
            if now - since > _HANDED_OUT_FOR_S:
                del _HANDED_OUT[port]
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT[port] = now
                return port


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when a server could bind ``port`` now (as servers do, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return "(no log written)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(log is empty)"


def http_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """Send one request; returns (status, parsed JSON or text). Never raises on 4xx/5xx."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    text = payload.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def server_env() -> dict[str, str]:
    """This process's environment without its secrets: a local server needs no cloud
    credential (IBM_API_KEY, AWS_SECRET_ACCESS_KEY from .env), and a server that needs one
    is given it by name in ``env``."""
    from mlops_helpers.config import is_secret_key

    return {k: v for k, v in os.environ.items() if not is_secret_key(k)}


@dataclass
class ManagedServer:
    """A server process we started; ``stop()`` ends it and its children."""

    name: str
    pid: int
    port: int
    log_path: Path
    start_time: float | None = None
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        """True while the server's main process runs. If it died but workers of its group
        still run (say after a ``kill -9`` of the master), they are stopped here: a worker
        never outlives its master, so nothing keeps answering on the port in its name."""
        if process_alive(self.pid, self.start_time):
            return True
        if group_members(self.pid):
            stop_process_group(self.pid, self.start_time)
        return False

    def stop(self, tracker: ResourceTracker | None = None) -> None:
        stop_process_group(self.pid, self.start_time)
        if tracker is not None:
            tracker.forget(f"process:{self.name}", self.pid)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "port": self.port,
            "host": self.host,
            "log_path": str(self.log_path),
            "start_time": self.start_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManagedServer:
        return cls(
            name=data["name"],
            pid=int(data["pid"]),
            port=int(data["port"]),
            log_path=Path(data["log_path"]),
            start_time=data.get("start_time"),
            host=data.get("host", LOOPBACK),
        )


def _healthy(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"not answering ({reason})"


def start_server(
    name: str,
    argv: Sequence[str],
    *,
    run_dir: Path,
    tracker: ResourceTracker | None = None,
    port: int | None = None,
    health_path: str = "/health",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
    interval: float = 0.2,
    wait: bool = True,
) -> ManagedServer:
    """Start ``argv`` (``{port}`` in any argument is replaced) and wait until it is healthy.

    The log goes to ``<run_dir>/logs/<name>.log``. If the process exits or never answers
    200 on ``health_path`` within ``timeout``, it is killed and the error shows its log.
    ``wait=False`` returns at once (tracked, not yet checked): the caller starts it early
    and checks it with ``wait_healthy`` when it needs it, in this process or another.
    """
    port = port or free_port()
    log_dir = Path(run_dir) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**server_env(), **(env or {}), "PYTHONUNBUFFERED": "1"}
    args = [a.replace("{port}", str(port)) for a in argv]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    remember_child(proc)
    server = ManagedServer(name, proc.pid, port, log_path, process_start_time(proc.pid))
    if tracker is not None:
        tracker.add(
            "process",
            name,
            pid=proc.pid,
            start_time=server.start_time,
            port=port,
            log_path=str(log_path),
        )
    if not wait:
        return server
    health_url = f"{server.url}{health_path}"

    def probe() -> tuple[bool, str]:
        if proc.poll() is not None:
            return False, f"exited with code {proc.returncode}"
        return _healthy(health_url)

    def exited(_result: tuple[bool, str]) -> str | None:
        # asked again, not taken from the probe: the server may exit between the probe's
        # own check and its refused connection, and its exit code is what explains it
        code = proc.poll()
        return None if code is None else f"exited with code {code}"

    try:
        wait_until(
            probe,
            what=f"server '{name}' at {health_url}",
            timeout=timeout,
            interval=interval,
            until=lambda r: r[0],
            describe=lambda r: r[1],
            fail_if=exited,
            progress=False,
        )
    except (WaitTimeout, Exception) as exc:
        stop_process_group(proc.pid)
        if tracker is not None:
            tracker.forget(f"process:{name}", proc.pid)
        raise ServerStartError(
            f"server '{name}' did not become healthy: {exc}\n"
            f"--- last lines of {log_path} ---\n{tail(log_path)}"
        ) from exc
    return server


def wait_healthy(
    server: ManagedServer,
    tracker: ResourceTracker,
    health_path: str = "/health",
    timeout: float = 60.0,
    interval: float = 0.05,
) -> ManagedServer:
    """``server`` once ``health_path`` answers 200 (it may have been started by another
    process); stopped, with its log's end in the error, when it exits or stays unhealthy
    for ``timeout`` seconds."""
    name, log_path = server.name, server.log_path

    def probe() -> str:
        if not process_alive(server.pid, server.start_time):
            return "exited"
        try:
            return f"HTTP {http_json('GET', f'{server.url}{health_path}', timeout=2)[0]}"
        except OSError as exc:
            return f"not answering ({getattr(exc, 'reason', exc)})"

    try:
        wait_until(
            probe,
            what=f"server '{name}' at {server.url}{health_path}",
            timeout=timeout,
            interval=interval,
            until=lambda r: r == "HTTP 200",
            describe=str,
            fail_if=lambda r: r if r == "exited" else None,
            progress=False,
        )
    except Exception as exc:
        server.stop(tracker)
        raise ServerStartError(
            f"server '{name}' did not become healthy: {exc}\n"
            f"--- last lines of {log_path} ---\n{tail(log_path)}"
        ) from exc
    return server
