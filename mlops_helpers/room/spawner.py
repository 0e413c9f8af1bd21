"""The room's spawner: JupyterHub's LocalProcessSpawner, an attendee a system user.

Why LocalProcessSpawner and not SystemdSpawner: SystemdSpawner needs systemd as PID 1, which
workshop containers (and this project's CI machine) do not have; LocalProcessSpawner runs
anywhere JupyterHub runs. It starts each server as the attendee's own system user (created at
first sign-in, see ``accounts``) and we add what SystemdSpawner would give: memory and CPU
limits that hold (a cgroup v2 group per attendee where the machine allows, else a memory
watchdog in the hub and process limits: see ``limits``), and on stop, every process the
attendee left running is ended.

When the room does not run as root it cannot switch users: it then serves one attendee, or
with ``--shared-user`` everyone as its own user, and says at start what is not kept apart.

JupyterHub waits for a new server to answer, and for a stopped one to exit, with an
exponential back-off whose steps grow to 5 s with random jitter: a server that took 4 s to
start or 2 s to stop is noticed up to 5 s later, once per attendee, at every start and every
end of a room. Here both waits poll the process itself every 0.1 s (a connect to its port, a
``poll()`` of its pid: both cheap), so the hub's own check that follows succeeds at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import psutil
from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from jupyterhub.utils import can_connect
from traitlets import Any as AnyTrait
from traitlets import Unicode

from mlops_helpers.paths import project_root
from mlops_helpers.room.accounts import (
    AccountError,
    ensure_system_user,
    pull_copy_as,
    refresh_mirror,
)
from mlops_helpers.room.limits import RoomLimits, choose_limits
from mlops_helpers.room.memory_watchdog import MemoryWatchdog, processes_of_uid
from mlops_helpers.room.spec import RoomSpec
from mlops_helpers.room.watch import room_processes_by_attendee

POLL_S = 0.1
SYSTEM_USERS, ONE_ATTENDEE, SHARED_USER = "system-users", "one-attendee", "shared-user"
SEAT_FILE = "attendee"  # one-attendee rooms: who has the seat


def isolation_for(shared_user: bool) -> str:
    if os.geteuid() == 0:
        return SYSTEM_USERS
    return SHARED_USER if shared_user else ONE_ATTENDEE


def room_limits(spec: RoomSpec) -> RoomLimits:
    room_id = hashlib.sha256(spec.room_dir.encode()).hexdigest()[:10]
    return choose_limits(
        spec.mem_limit,
        spec.cpu_limit,
        room_id,
        system_users=spec.isolation == SYSTEM_USERS,
    )


def not_kept_apart(hub_user: str) -> str:
    """What a shared-user room cannot promise, said at start."""
    return (
        f"--shared-user: every attendee runs as {hub_user}, so attendees are NOT kept apart: "
        "each can read and change every other attendee's home and notebooks, read the room's "
        "codes, admin token and password store (and so sign in as an instructor), and stop "
        "anyone's kernels and servers. Run the room as root (a system user per attendee) or on "
        "Kubernetes when strangers share it."
    )


def take_the_seat(room_dir: Path, name: str) -> None:
    """A room that is not root serves one attendee: the first to start a server."""
    seat = room_dir / SEAT_FILE
    try:
        with open(seat, "x") as claimed:
            claimed.write(name)
        return
    except FileExistsError:
        holder = seat.read_text().strip()
    if holder != name:
        raise AccountError(
            f"this room does not run as root, so it cannot keep attendees apart and serves one "
            f"attendee ({holder}); the instructor can restart it as root, or with --shared-user"
        )


class RoomSpawner(LocalProcessSpawner):
    spec_path = Unicode(config=True, help="The room spec (room.json) this hub serves.")
    limits = AnyTrait(help="RoomLimits for every attendee of the room.")

    _leaf: Path | None = None
    _watchdog: MemoryWatchdog | None = None

    @cached_property
    def spec(self) -> RoomSpec:
        return RoomSpec.load(self.spec_path)

    @property
    def home_dir(self) -> Path:
        return self.spec.homes / self.user.name

    @property
    def system_user(self) -> str | None:
        spec = self.spec
        return spec.user_prefix + self.user.name if spec.isolation == SYSTEM_USERS else None

    async def start(self) -> tuple[str, int]:
        """Make the attendee's user, home and copy, prepare their limits, start the server,
        and return once it accepts connections, has exited or has had ``start_timeout``
        seconds: the hub's own checks then report any failure as usual."""
        spec = self.spec
        if self.limits is None:
            self.limits = room_limits(spec)
        await asyncio.to_thread(self._prepare, spec)
        ip, port = await super().start()
        self._watch_memory(spec)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while await self.poll() is None and not can_connect(ip, port) and loop.time() < deadline:
            await asyncio.sleep(POLL_S)
        return ip, port

    def _prepare(self, spec: RoomSpec) -> None:
        """In a thread (useradd and git take a while; the hub keeps serving the room)."""
        home = self.home_dir
        entry = None
        if spec.isolation == ONE_ATTENDEE:
            take_the_seat(Path(spec.room_dir), self.user.name)
        if self.system_user:
            entry = ensure_system_user(self.system_user, home)
        else:
            home.mkdir(parents=True, exist_ok=True)
        mirror = refresh_mirror(Path(spec.repo), Path(spec.room_dir))
        pull_copy_as(
            entry,
            mirror,
            spec.branch,
            home,
            python_bin=Path(spec.python_bin),
            project=project_root(),
        )
        self._leaf = self.limits.prepare(self.user.name)

    def _watch_memory(self, spec: RoomSpec) -> None:
        """Where no cgroup holds memory, the hub's watchdog does: over the attendee's system
        user, or (one user for everyone) over the processes started for this attendee."""
        if self.system_user:
            processes = processes_of_uid(pwd.getpwnam(self.system_user).pw_uid)
        else:
            name = self.user.name

            def processes() -> list[psutil.Process]:
                found = room_processes_by_attendee(spec.room_dir)
                return [proc for attendee, proc in found if attendee == name]

        self._watchdog = self.limits.watchdog(self.user.name, processes, self.log)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        """In the server's process before it runs: limits (as root), then the attendee's
        user, then their home as working folder."""
        limit = self.limits.preexec(self._leaf)
        become = set_user_setuid(self.system_user, chdir=False) if self.system_user else None
        home = str(self.home_dir)

        def preexec() -> None:
            limit()
            if become is not None:
                become()
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.system_user or self.user.name
        env["HOME"] = str(self.home_dir)
        env["SHELL"] = "/bin/bash"
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        return paths  # no internal TLS in the room: loopback only

    async def stop(self, now: bool = False) -> None:
        """Stop the server, then whatever the attendee left running (a scenario's server
        a notebook did not clean up holds memory for nothing), then free their limits."""
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        await super().stop(now=now)
        if self.system_user:
            await asyncio.to_thread(end_processes_of, pwd.getpwnam(self.system_user).pw_uid)
        if self.limits is not None:
            self.limits.release(self.user.name)

    async def wait_for_death(self, timeout: float = 10) -> bool:
        """True once the server's process has exited, False after ``timeout`` seconds (the
        hub then sends the next, harder signal)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.poll() is None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True


def end_processes_of(uid: int, grace_s: float = 5.0) -> None:
    """Terminate, then kill, every process of one system user."""
    procs = processes_of_uid(uid)()
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=grace_s)


def configure_attendees(c: Any, spec: RoomSpec) -> None:
    """The spawner part of the hub's config: how each attendee's server runs."""
    c.JupyterHub.spawner_class = RoomSpawner
    c.RoomSpawner.spec_path = str(spec.spec_path)
    c.Spawner.cmd = [str(Path(spec.python_bin) / "jupyterhub-singleuser")]
    c.Spawner.notebook_dir = "~"
    # Jupyter refuses to run as root unless told; only a shared-user room in a root container
    # would (a system-users room never runs a server as root).
    c.Spawner.args = (
        ["--allow-root"] if spec.isolation != SYSTEM_USERS and os.geteuid() == 0 else []
    )
    c.Spawner.default_url = "/lab/tree/mlops-workshop/notebooks"
    c.Spawner.ip = "127.0.0.1"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    # shown to the server (MEM_LIMIT, CPU_LIMIT); what enforces them is RoomSpawner's limits
    c.Spawner.mem_limit = spec.mem_limit
    c.Spawner.cpu_limit = spec.cpu_limit
    path_env = ":".join([spec.python_bin, "/usr/local/bin", "/usr/bin", "/bin"])
    c.Spawner.environment = {
        "PATH": path_env,
        "MLOPS_ATTENDEE": lambda spawner: spawner.user.name,
        "MLOPS_RUN_ROOT": lambda spawner: str(spec.homes / spawner.user.name / "runs"),
        # scenario files, caches (build/) and .env come from the attendee's own copy
        "MLOPS_PROJECT_ROOT": lambda spawner: str(
            spec.homes / spawner.user.name / "mlops-workshop"
        ),
        "JUPYTER_PLATFORM_DIRS": "1",
        # fewer malloc arenas: the same memory in less address space (RLIMIT_AS counts it)
        "MALLOC_ARENA_MAX": "2",
        "MLOPS_ROOM": spec.room_dir,  # lets `stop` find anything of this room that outlived the hub
    }
