"""Start and stop a workshop room: JupyterHub + configurable-http-proxy on this machine.

``mlops-workshop hub`` (and ``make hub``) runs a room in the foreground until Ctrl-C;
tests and the room benchmark use ``start_room`` / ``Room.stop``. Stopping leaves no process
and no port behind: the hub stops its proxy, services and every attendee's server, and
whatever still carries the room's marker afterwards is stopped too.

One room per folder: the launcher takes a lock on ``<room>/room.lock`` before it writes
anything, and the hub inherits it, so the lock is held while either lives. A second start in
the same folder says where the running room is and changes nothing. The launcher ends the
room on SIGHUP (a dropped SSH session) and SIGTERM as on Ctrl-C; a room whose launcher was
killed outright is ended by ``mlops-workshop hub stop``.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from mlops_helpers.errors import WorkshopError
from mlops_helpers.paths import project_root
from mlops_helpers.room.accounts import open_room_to_attendees, precompile
from mlops_helpers.room.spawner import (
    SYSTEM_USERS,
    isolation_for,
    not_kept_apart,
    room_limits,
)
from mlops_helpers.room.spec import SPEC_ENV, RoomSpec, room_code
from mlops_helpers.servers import free_port, port_is_free
from mlops_helpers.waiting import wait_until

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
LOCK_FILE = "room.lock"
LAUNCHER_PID_FILE = "launcher.pid"
HUB_PID_FILE = "jupyterhub.pid"  # JupyterHub writes it (c.JupyterHub.pid_file)


class RoomError(WorkshopError):
    """The room could not start or stop cleanly."""


class RoomRunning(RoomError):
    """A room already runs in this folder."""


def lock_room(room_dir: Path) -> int:
    """Take the room folder's lock (a file descriptor the hub will inherit), or say where the
    room that holds it is. Writes nothing else."""
    room_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(room_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RoomRunning(
            f"a room is already running in {room_dir} at {_running_url(room_dir)}/ : "
            f"nothing was changed (end it with Ctrl-C where it was started, or "
            f"`mlops-workshop hub stop --room-dir {room_dir}`)"
        ) from None
    return fd


def _running_url(room_dir: Path) -> str:
    try:
        return RoomSpec.load(room_dir / "room.json").public_url
    except (OSError, ValueError, TypeError):
        return "(its address is not recorded)"


def proxy_dirs(root: Path) -> list[str]:
    """Where ``configurable-http-proxy`` is: the project's own npm tools, else PATH."""
    local = root / ".tools" / "node_modules" / ".bin"
    if (local / "configurable-http-proxy").exists():
        return [str(local)]
    if shutil.which("configurable-http-proxy"):
        return []
    raise RoomError(
        "configurable-http-proxy is missing: run `make hub` (it installs it "
        "under .tools/) or `npm install -g configurable-http-proxy`"
    )


def _git_branch(repo: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--abbrev-ref", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RoomError(f"{repo} is not a git checkout: attendees get their copy with git")
    return done.stdout.strip()


def plan_room(
    room_dir: Path,
    *,
    port: int | None = None,
    instructors: list[str] | None = None,
    repo: Path | None = None,
    idle_timeout_s: int = 3600,
    mem_limit: str = "2G",
    cpu_limit: float = 1.0,
    ip: str = "127.0.0.1",
    shared_user: bool = False,
    user_prefix: str = "jupyter-",
) -> RoomSpec:
    root = project_root()
    repo = (repo or root).resolve()
    if port is not None and not port_is_free(port):
        raise RoomError(f"port {port} is taken: pick another with --port")
    spec = RoomSpec(
        room_dir=str(room_dir.resolve()),
        repo=str(repo),
        branch=_git_branch(repo),
        python_bin=str(Path(sys.executable).parent),
        hub_port=port or free_port(),
        hub_api_port=free_port(),
        proxy_api_port=free_port(),
        service_port=free_port(),
        instructors=instructors or ["instructor"],
        idle_timeout_s=idle_timeout_s,
        mem_limit=mem_limit,
        cpu_limit=cpu_limit,
        extra_path=proxy_dirs(root),
        ip=ip,
        isolation=isolation_for(shared_user),
        user_prefix=user_prefix,
    )
    spec.limits = room_limits(spec).describe()
    return spec


@dataclass
class Room:
    spec: RoomSpec
    process: subprocess.Popen[bytes]
    workshop_code: str
    instructor_code: str
    admin_token: str
    lock_fd: int | None = None  # the room folder's lock, released by stop()
    opened: list[str] = field(default_factory=list)  # folders made enterable for attendees
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)  # precompile

    @property
    def url(self) -> str:
        return self.spec.url

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The hub's REST API with the launcher's own token."""
        headers = {"Authorization": f"token {self.admin_token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/hub/api/{path.lstrip('/')}", headers=headers, timeout=30, **kwargs
        )

    def room_processes(self) -> list[psutil.Process]:
        """Every live process that belongs to this room (the hub's group or its marker)."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid == self.process.pid or _marked(proc, self.spec.room_dir):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop the hub (it stops the proxy, services and servers), then any straggler:
        everything the hub had started when asked to stop, and anything with the room's
        marker. The folder's lock is released last."""
        try:
            for helper in self.background:  # the environment's precompile, if still at it
                if helper.poll() is None:
                    helper.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    helper.wait(timeout=30)
            end_room(self.spec, self.process.pid, grace_s)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)  # reap it
        finally:
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None


def end_room(spec: RoomSpec, hub_pid: int | None, grace_s: float = 30.0) -> int:
    """Stop the hub ``hub_pid`` (SIGTERM, then SIGKILL after ``grace_s``), every process it
    had started and every process with the room's marker; wait for the room's ports to be
    free. Returns how many processes were stopped."""
    hub = _process(hub_pid)
    if hub is not None and not _marked(hub, spec.room_dir):
        hub = None  # a stale pid file, and the number now belongs to another process
    started = _descendants(hub.pid) if hub else []
    if hub and _running(hub):
        _quietly(hub.terminate)
        _, alive = psutil.wait_procs([hub], timeout=grace_s)
        for proc in alive:
            _quietly(proc.kill)
        psutil.wait_procs(alive, timeout=10)
    leftovers = [p for p in started if _running(p)]
    leftovers += [p for p in marked_processes(spec.room_dir) if p not in leftovers]
    for proc in leftovers:
        _quietly(proc.terminate)
    _, alive = psutil.wait_procs(leftovers, timeout=10)
    for proc in alive:
        _quietly(proc.kill)
    psutil.wait_procs(alive, timeout=5)
    ports = [spec.hub_port, spec.hub_api_port, spec.proxy_api_port, spec.service_port]
    wait_until(
        lambda: all(port_is_free(p) for p in ports),
        timeout=30,
        interval=0.2,
        what="the room's ports to be released",
        progress=False,
    )
    return len(leftovers) + (1 if hub else 0)


def marked_processes(room_dir: str) -> list[psutil.Process]:
    """Every live process with this room's marker (the hub, its proxy, services, servers,
    kernels and what notebooks started), other than this one."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid != os.getpid() and _running(proc) and _marked(proc, room_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _process(pid: int | None) -> psutil.Process | None:
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    return proc if _running(proc) else None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _quietly(action: Any) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        action()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _marked(proc: psutil.Process, room_dir: str) -> bool:
    try:
        env = proc.environ()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False
    return env.get("MLOPS_ROOM") == room_dir or env.get(SPEC_ENV, "").startswith(room_dir)


def start_room(
    spec: RoomSpec,
    *,
    workshop_code: str | None = None,
    instructor_code: str | None = None,
    timeout_s: float = 90.0,
    lock_fd: int | None = None,
) -> Room:
    """Start the room of ``spec``; ``lock_fd`` is its folder's lock when the caller took it
    already (else it is taken here, before anything is written)."""
    room_dir = Path(spec.room_dir)
    for kind, given in (("workshop", workshop_code), ("instructor", instructor_code)):
        if given is not None and len(given) < 6:
            raise RoomError(f"the {kind} code must have at least 6 characters")
    lock_fd = lock_room(room_dir) if lock_fd is None else lock_fd
    try:
        return _start_locked(spec, workshop_code, instructor_code, timeout_s, lock_fd)
    except BaseException:
        os.close(lock_fd)
        raise


def _start_locked(
    spec: RoomSpec,
    workshop_code: str | None,
    instructor_code: str | None,
    timeout_s: float,
    lock_fd: int,
) -> Room:
    room_dir = Path(spec.room_dir)
    # what a room whose hub was killed outright left behind (attendees' servers, kernels)
    end_room(spec, _read_pid(room_dir / HUB_PID_FILE), grace_s=10)
    codes = {
        kind: room_code(room_dir, kind, given)
        for kind, given in (
            ("workshop", workshop_code),
            ("instructor", instructor_code),
            ("room-admin-token", None),
        )
    }
    spec.homes.mkdir(parents=True, exist_ok=True)
    spec_path = spec.save()
    opened = []
    if spec.isolation == SYSTEM_USERS:
        opened = open_room_to_attendees(room_dir, Path(spec.python_bin), project_root())
    env = {
        **os.environ,
        SPEC_ENV: str(spec_path),
        "MLOPS_ROOM": spec.room_dir,
        "PATH": os.pathsep.join([spec.python_bin, *spec.extra_path, os.environ["PATH"]]),
    }
    log_path = room_dir / "jupyterhub.log"
    log_path.touch(mode=0o600)
    log_path.chmod(0o600)  # the hub's alone, as everything it writes (umask below)
    log = log_path.open("ab")
    try:
        process = subprocess.Popen(
            [str(Path(spec.python_bin) / "jupyterhub"), "-f", str(CONFIG_FILE)],
            cwd=room_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(lock_fd,),  # the hub holds the folder's lock too, as long as it lives
            umask=0o077,  # the hub's files (database, secrets, logs) are the hub's alone
        )
    finally:
        log.close()
    room = Room(
        spec,
        process,
        codes["workshop"],
        codes["instructor"],
        codes["room-admin-token"],
        opened=opened,
    )
    if spec.isolation == SYSTEM_USERS:
        room.background.append(precompile(Path(spec.python_bin), project_root(), room_dir))

    def hub_answers() -> bool | str:
        if process.poll() is not None:
            raise RoomError(
                f"JupyterHub exited with {process.returncode}; see {room_dir / 'jupyterhub.log'}"
            )
        try:
            return True if room.api("GET", "/").ok else "starting"
        except requests.RequestException:
            return "starting"

    try:
        wait_until(
            hub_answers,
            timeout=timeout_s,
            interval=0.3,
            what="JupyterHub",
            until=lambda status: status is True,
            progress=False,
        )
    except BaseException:
        room.stop()
        raise
    room.lock_fd = lock_fd
    return room


class RoomEnded(Exception):
    """The launcher was told to end the room (SIGHUP, SIGTERM)."""


def _end_on_signal(signum: int, frame: object) -> None:
    raise RoomEnded(signal.Signals(signum).name)


def _say(log: Any, text: str) -> None:
    """Print, unless the terminal is gone (a dropped SSH session): ending the room matters
    more than telling it."""
    with contextlib.suppress(OSError):
        log(text)


def isolation_lines(spec: RoomSpec, opened: list[str]) -> list[str]:
    """What the instructor is told at start: how attendees are kept apart, which limits hold."""
    if spec.isolation == SYSTEM_USERS:
        lines = [f"Attendees are kept apart: each runs as system user {spec.user_prefix}NAME."]
        if opened:
            lines.append("Made enterable (not listable) for attendees: " + ", ".join(opened))
    elif spec.isolation == "shared-user":
        lines = [not_kept_apart(getpass.getuser())]
    else:
        lines = [
            f"This room does not run as root: it serves ONE attendee, as {getpass.getuser()} "
            "(run it as root for a system user per attendee, or pass --shared-user)."
        ]
    return [*lines, f"Limits: {spec.limits}."]


def serve_room(
    room_dir: Path,
    port: int | None,
    instructors: list[str],
    workshop_code: str | None,
    ip: str = "127.0.0.1",
    log: Any = print,
    shared_user: bool = False,
    mem_limit: str = "2G",
    cpu_limit: float = 1.0,
) -> None:
    """Run a room in the foreground until Ctrl-C, SIGHUP or SIGTERM (``mlops-workshop hub``);
    each ends the whole room."""
    lock_fd = lock_room(room_dir)
    try:
        spec = plan_room(
            room_dir,
            port=port,
            instructors=instructors,
            ip=ip,
            shared_user=shared_user,
            mem_limit=mem_limit,
            cpu_limit=cpu_limit,
        )
    except BaseException:
        os.close(lock_fd)
        raise
    previous = {s: signal.signal(s, _end_on_signal) for s in (signal.SIGHUP, signal.SIGTERM)}
    room = start_room(spec, workshop_code=workshop_code, lock_fd=lock_fd)
    (room_dir / LAUNCHER_PID_FILE).write_text(str(os.getpid()))
    url = spec.public_url
    _say(log, f"Workshop room is up at {url}/  (workshop code: {room.workshop_code})")
    for line in isolation_lines(spec, room.opened):
        _say(log, line)
    _say(
        log,
        f"Instructors ({', '.join(spec.instructors)}) sign in with the code in "
        f"{Path(spec.room_dir) / 'instructor-code'}; the room page is {url}/services/room/",
    )
    _say(log, "Press Ctrl-C to end the room (every attendee's server is stopped).")
    try:
        room.process.wait()  # the hub does the work; we only wait for a signal or its exit
    except (KeyboardInterrupt, RoomEnded) as why:
        _say(log, f"Ending the room ({type(why).__name__ if not str(why) else why}) ...")
    finally:
        for signum in previous:  # a second signal must not cut the stop short
            signal.signal(signum, signal.SIG_IGN)
        room.stop()
        with contextlib.suppress(OSError):
            (room_dir / LAUNCHER_PID_FILE).unlink()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _say(log, "Room ended: no process and no port left behind.")


def stop_room(room_dir: Path, log: Any = print, grace_s: float = 30.0) -> None:
    """``mlops-workshop hub stop``: end the room running in ``room_dir``, whether its
    launcher is alive (asked to end it, as Ctrl-C would) or gone (the hub and everything
    with the room's marker are stopped here). Also clears leftovers of a room whose hub died."""
    spec_path = room_dir / "room.json"
    if not spec_path.is_file():
        raise RoomError(f"no room was ever started in {room_dir}")
    spec = RoomSpec.load(spec_path)
    launcher = _process(_read_pid(room_dir / LAUNCHER_PID_FILE))
    if launcher is not None and "hub" in " ".join(_quietly_cmdline(launcher)):
        launcher.terminate()
        psutil.wait_procs([launcher], timeout=grace_s + 30)
    stopped = end_room(spec, _read_pid(room_dir / HUB_PID_FILE), grace_s)
    fd = lock_room(room_dir)  # free once the hub is gone: proves nothing holds the room
    os.close(fd)
    with contextlib.suppress(OSError):
        (room_dir / LAUNCHER_PID_FILE).unlink()
    if launcher is not None:
        log(f"Room in {room_dir} ended by its launcher (pid {launcher.pid}).")
    elif stopped:
        log(f"Room in {room_dir} ended: {stopped} processes stopped, no port left behind.")
    else:
        log(f"No room was running in {room_dir}; nothing to stop.")


def _quietly_cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []
