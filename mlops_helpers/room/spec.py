"""What a room is, in one JSON file the launcher writes and the hub's processes read."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

SPEC_ENV = "MLOPS_ROOM_SPEC"
ROOM_SERVICE = "room"  # the instructor page lives at /services/room/


@dataclass
class RoomSpec:
    room_dir: str  # hub database, cookie secret, password store, logs, homes/
    repo: str  # the git repository attendees get their copy from (nbgitpuller)
    branch: str
    python_bin: str  # the workshop environment's bin/ (jupyterhub-singleuser, mlops-workshop)
    hub_port: int
    hub_api_port: int
    proxy_api_port: int
    service_port: int
    instructors: list[str] = field(default_factory=lambda: ["instructor"])
    idle_timeout_s: int = 3600
    mem_limit: str = "2G"
    cpu_limit: float = 1.0
    extra_path: list[str] = field(default_factory=list)  # where configurable-http-proxy is
    # Where attendees reach the room. Loopback by default (behind your TLS reverse proxy or an
    # SSH tunnel); 0.0.0.0 serves the room's network directly. Everything else stays loopback.
    ip: str = "127.0.0.1"
    # How attendees are kept apart (mlops_helpers.room.spawner): "system-users" (the room runs
    # as root: a system user each), "one-attendee" (not root: one attendee only) or
    # "shared-user" (not root, --shared-user: everyone as the hub's user, nothing kept apart).
    isolation: str = "system-users"
    user_prefix: str = "jupyter-"  # system user of attendee NAME: jupyter-NAME, as TLJH names it
    limits: str = ""  # which limits hold, in words (mlops_helpers.room.limits); the page shows it

    @property
    def url(self) -> str:
        """The hub as this machine reaches it (tests, the launcher's own API calls)."""
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def public_url(self) -> str:
        host = self.ip if self.ip not in ("0.0.0.0", "") else _hostname()
        return f"http://{host}:{self.hub_port}"

    @property
    def homes(self) -> Path:
        return Path(self.room_dir) / "homes"

    @property
    def spec_path(self) -> Path:
        return Path(self.room_dir) / "room.json"

    def save(self) -> Path:
        path = self.spec_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> RoomSpec:
        source = path or os.environ.get(SPEC_ENV)
        if not source:
            raise RuntimeError(f"{SPEC_ENV} is not set: start the room with `make hub`")
        return cls(**json.loads(Path(source).read_text()))


def _hostname() -> str:
    import socket

    return socket.getfqdn()


def room_code(room_dir: Path, kind: str, given: str | None) -> str:
    """The workshop or instructor code: the one given, else the one kept in the room folder,
    else a new one. Kept in a file only its owner can read, so a restart keeps the code."""
    path = room_dir / f"{kind}-code"
    if given:
        code = given
    elif path.is_file():
        code = path.read_text().strip()
    else:
        code = secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")
    room_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(code)
    return code


def read_code(room_dir: str | Path, kind: str) -> str:
    return (Path(room_dir) / f"{kind}-code").read_text().strip()
