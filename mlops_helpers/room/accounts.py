"""People apart on one machine: a system user per attendee, a room folder only the hub reads,
and a shared environment every attendee can reach but not change.

When the room runs as root (a workshop VM or container), each attendee gets a system user
``jupyter-<name>`` at their first sign-in, as The Littlest JupyterHub does; its home is
``<room>/homes/<name>``, mode 0700, owned by it. The room folder itself is 0711 (enter, not
list) and everything in it but ``homes/`` and the workshop mirror is the hub's, 0600/0700:
the hub database, cookie secret, password store, codes, admin token and logs.

Attendees' kernels run the checkout's ``.venv`` (and ``.venvs/seldon``) and import the
helpers from the checkout, so every directory above them must be enterable: a checkout under
``/root`` (mode 0700) is not. ``grant_traverse`` adds the "x" bit for others to exactly those
directories (enter by name, not list) and the room says which at start. Nothing inside is
made writable: the environment stays read-only to attendees.

Attendees get their copy of the workshop from ``<room>/workshop.git``, a mirror of the
checkout's commits the hub refreshes at every server start: committed files only, so the
checkout's ``.env``, ``runs/`` and ``build/`` stay private. The copy is cloned and pulled by
the attendee's own user (nbgitpuller's ``gitpuller``), never by root in a folder an attendee
controls.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
import threading
from pathlib import Path

from mlops_helpers.errors import WorkshopError

MIRROR = "workshop.git"
PUBLIC_IN_ROOM = {"homes": 0o711, MIRROR: 0o755}  # the rest of the room folder: hub only
GIT_TIMEOUT_S = 300
_users_lock = threading.Lock()  # useradd refuses while another one holds /etc/passwd
_mirror_lock = threading.Lock()


class AccountError(WorkshopError):
    """An attendee's system user, home or copy could not be made."""


def running_as_root() -> bool:
    return os.geteuid() == 0


def ensure_system_user(login: str, home: Path) -> pwd.struct_passwd:
    """The attendee's system user, created on first use, with its home made 0700."""
    with _users_lock:
        try:
            entry = pwd.getpwnam(login)
        except KeyError:
            _run(
                [
                    "useradd",
                    "--home-dir",
                    str(home),
                    "--no-create-home",
                    "--shell",
                    "/bin/bash",
                    "--user-group",
                    "--comment",
                    "workshop attendee",
                    login,
                ],
                f"creating system user {login}",
            )
            entry = pwd.getpwnam(login)
    if Path(entry.pw_dir) != home:
        raise AccountError(
            f"system user {login} exists with home {entry.pw_dir}, not {home}: it belongs to "
            "another room on this machine (pick another room folder or user prefix)"
        )
    home.mkdir(mode=0o700, exist_ok=True)
    if home.is_symlink() or not home.is_dir():
        raise AccountError(f"{home} is not a plain directory")
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
    return entry


def remove_system_users(homes: Path) -> list[str]:
    """Delete the system users whose home is under ``homes`` (tests and benchmarks clean up
    with this; a real room keeps its attendees for the next day, as TLJH does)."""
    removed = []
    for entry in pwd.getpwall():
        if Path(entry.pw_dir).parent == homes:
            _run(["userdel", entry.pw_name], f"removing system user {entry.pw_name}")
            removed.append(entry.pw_name)
    return removed


def lock_down_room(room_dir: Path) -> None:
    """The room folder: enterable (homes are below it), not listable; its files the hub's."""
    room_dir.chmod(0o711)
    for child in room_dir.iterdir():
        if child.is_symlink():
            continue
        if child.name in PUBLIC_IN_ROOM:
            child.chmod(PUBLIC_IN_ROOM[child.name])
        else:
            child.chmod(0o700 if child.is_dir() else 0o600)


def grant_traverse(paths: list[Path]) -> list[str]:
    """Let every user enter each directory on the way to ``paths`` (their own "x" bit for
    others: enter by name, not list). Returns the directories changed."""
    changed = []
    for path in paths:
        for directory in [*reversed(path.parents), path]:
            if not directory.is_dir():
                continue
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                changed.append(str(directory))
    return changed


def not_readable_by_others(paths: list[Path]) -> list[str]:
    """Of ``paths`` (files, or directories to list), those other users cannot read."""
    return [str(p) for p in paths if not p.stat().st_mode & stat.S_IROTH]


def shared_environment(python_bin: Path, project: Path) -> tuple[list[Path], list[Path]]:
    """What attendees' processes need from the instructor's side: (directories to reach,
    files and directories to read)."""
    python = Path(os.path.realpath(python_bin / "python"))
    reach = [python_bin.parent, python.parent.parent, project / "mlops_helpers"]
    read = [python_bin / "jupyterhub-singleuser", python, project / "mlops_helpers"]
    seldon = project / ".venvs" / "seldon"
    if seldon.is_dir():
        reach.append(seldon)
        read.append(Path(os.path.realpath(seldon / "bin" / "python")))
    return reach, read


def open_room_to_attendees(room_dir: Path, python_bin: Path, project: Path) -> list[str]:
    """Before a system-users room starts: the room folder the hub's, the shared environment
    reachable. Returns what was changed, for the start-up message."""
    homes = room_dir / "homes"
    homes.mkdir(parents=True, exist_ok=True)
    lock_down_room(room_dir)
    reach, read = shared_environment(python_bin, project)
    changed = grant_traverse([homes, *reach])
    unreadable = not_readable_by_others(read)
    if unreadable:
        raise AccountError(
            "attendees could not read the shared environment: "
            + ", ".join(unreadable)
            + " (make it readable: chmod -R o+rX on it, or install it with umask 022)"
        )
    return changed


def precompile(python_bin: Path, project: Path, room_dir: Path) -> subprocess.Popen[bytes]:
    """Compile the shared environment's modules once, in the background at low priority.
    Attendees cannot write ``__pycache__`` into it, so without this each of their kernels
    compiles every module it imports again (seconds of CPU each). Safe to stop at any
    moment (each file is written whole); it carries the room's marker, so stopping the room
    stops it."""
    trees = [python_bin.parent, project / "mlops_helpers", project / ".venvs"]
    return subprocess.Popen(
        [
            "nice",
            "-n",
            "19",
            str(python_bin / "python"),
            "-m",
            "compileall",
            "-q",
            *map(str, trees),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLOPS_ROOM": str(room_dir)},
        umask=0o022,
        start_new_session=True,
    )


def refresh_mirror(repo: Path, room_dir: Path) -> Path:
    """``<room>/workshop.git``: the checkout's commits, readable by every attendee."""
    mirror = room_dir / MIRROR
    with _mirror_lock:
        if (mirror / "HEAD").is_file():
            _run(
                ["git", "-C", str(mirror), "fetch", "--prune", "--quiet"],
                "refreshing " + MIRROR,
                umask=0o022,
            )
        else:
            _run(
                ["git", "clone", "--mirror", "--quiet", str(repo), str(mirror)],
                "making " + MIRROR,
                umask=0o022,
            )
    return mirror


def pull_copy_as(
    entry: pwd.struct_passwd | None,
    mirror: Path,
    branch: str,
    home: Path,
    *,
    python_bin: Path,
    project: Path,
) -> None:
    """Clone or update ``<home>/mlops-workshop`` from the mirror, as the attendee's user
    (``entry``; None: as the hub's own user). nbgitpuller merges, so their edits are kept."""
    copy = home / "mlops-workshop"
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    as_user: dict[str, object] = {}
    if entry is not None:
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    for argv, what in (
        # the mirror is the hub's: the attendee's git reads it only when told it is safe
        (
            ["git", "config", "--global", "--replace-all", "safe.directory", str(mirror)]
            + ["^" + re.escape(str(mirror)) + "$"],
            "trusting the workshop mirror",
        ),
        (
            [str(python_bin / "gitpuller"), str(mirror), branch, str(copy)],
            "getting the workshop copy",
        ),
        # the Seldon runtime is the instructor's, shared read-only (it is not in git)
        (["ln", "-sfn", str(project / ".venvs"), str(copy / ".venvs")], "linking .venvs"),
    ):
        _run(argv, what, cwd=home, env=env, umask=0o077, **as_user)


def _run(argv: list[str], what: str, **kwargs: object) -> None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False, **kwargs
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AccountError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        raise AccountError(f"{what} failed: {(done.stderr or done.stdout).strip()[-500:]}")
