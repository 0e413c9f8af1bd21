"""Every created thing is recorded with its teardown, in the run directory.

A later process (the ``cleanup`` stage run by Jenkins in its own ``sh`` step) reads the
same file and still finds what earlier stages started. Teardown runs newest first, goes on
past a teardown that fails, and reports every failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mlops_helpers.errors import CleanupError, CorruptFileError

Teardown = Callable[[dict[str, Any]], None]
_HANDLERS: dict[str, Teardown] = {}
# Popen objects of children this process started: kept so they are reaped (no zombies, no
# "still running" warnings when the object would otherwise be garbage-collected).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def remember_child(proc: subprocess.Popen[bytes]) -> None:
    _CHILDREN[proc.pid] = proc


def _reap(pid: int) -> None:
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _CHILDREN[pid] = proc


def teardown_handler(kind: str) -> Callable[[Teardown], Teardown]:
    """Register the function that releases resources of ``kind``."""

    def register(func: Teardown) -> Teardown:
        _HANDLERS[kind] = func
        return func

    return register


def _resolve(kind: str, module: str | None) -> Teardown:
    if kind not in _HANDLERS and module:
        importlib.import_module(module)  # registers the scenario's handlers
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise KeyError(f"no teardown registered for resource kind '{kind}'") from None


# -- processes --------------------------------------------------------------------------
# Everything here goes through psutil and POSIX process groups, never through /proc, so it
# behaves the same on Linux and macOS (Windows has no process groups: use WSL2 there).
StartTime = float | None  # psutil's create_time(): seconds since the epoch


def process_start_time(pid: int) -> StartTime:
    """When ``pid`` started, or None if it does not exist (guards against a reused pid)."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_start(current: float, recorded: object) -> bool:
    try:
        if isinstance(recorded, str):  # an older run directory: clock ticks since boot
            seconds = psutil.boot_time() + int(recorded) / os.sysconf("SC_CLK_TCK")
        else:
            seconds = float(recorded)  # type: ignore[arg-type]
    except (TypeError, ValueError, OSError):
        return False
    return abs(current - seconds) < 0.05


def process_alive(pid: int, start_time: object = None) -> bool:
    """True when ``pid`` runs (a zombie does not count) and, if given, started at
    ``start_time``: the very process we recorded, not a later one with the same pid."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return start_time is None or _same_start(proc.create_time(), start_time)
    except psutil.Error:  # gone, a zombie (macOS raises for those) or not ours to see
        return False


def group_members(pgid: int) -> list[psutil.Process]:
    """The running (non-zombie) processes of process group ``pgid``.

    A server's workers stay in its group even when their parent died and they were
    re-parented, so this finds orphans that a walk over children would miss.
    """
    try:
        os.killpg(pgid, 0)  # cheap answer for the usual case: nobody left at all
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (OSError, psutil.Error):  # exited while we looked
            continue
    return members


def _reused(pid: int, start_time: object) -> bool:
    """True when ``pid`` now belongs to another process than the one we started. Our own
    leader as an unreaped zombie (an orphan whose init does not reap) is not reused: its
    group may still hold live workers that must be stopped."""
    if start_time is None or pid in _CHILDREN:
        return False
    current = process_start_time(pid)
    return current is not None and not _same_start(current, start_time)


def terminate_group(pid: int, start_time: object = None) -> None:
    """Send SIGTERM to the process group led by ``pid`` without waiting for it."""
    if not _reused(pid, start_time):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)


def stop_process_group(pid: int, start_time: object = None, grace: float = 10.0) -> None:
    """Terminate the process group led by ``pid`` (the leader may already be dead: its
    workers are still in the group); kill what outlives ``grace``; nothing is left."""
    from mlops_helpers.waiting import pause

    if _reused(pid, start_time):
        return  # the pid now belongs to someone else: leave it alone
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        _reap(pid)
        return
    deadline = time.monotonic() + grace
    while group_members(pid) and time.monotonic() < deadline:
        _reap_if_exited(pid)
        pause(0.05)
    if group_members(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        # SIGKILL cannot be ignored; bounded, so a process stuck in the kernel cannot hang us
        kill_deadline = time.monotonic() + 5.0
        while group_members(pid) and time.monotonic() < kill_deadline:
            pause(0.05)
    _reap(pid)


def _reap_if_exited(pid: int) -> None:
    """Collect our own child's exit status as soon as it has one (it is then no zombie)."""
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        _CHILDREN.pop(pid, None)


@teardown_handler("process")
def _teardown_process(params: dict[str, Any]) -> None:
    stop_process_group(int(params["pid"]), params.get("start_time"))


@teardown_handler("path")
def _teardown_path(params: dict[str, Any]) -> None:
    path = Path(params["path"])
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def read_json(path: Path, default: Any, expected: type = object) -> Any:
    """``path``'s JSON (``default`` when it does not exist); a torn or foreign file is a
    ``CorruptFileError`` naming it, in one line."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return default
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorruptFileError(
            f"{path} is corrupt ({exc}); move it aside to start this run folder afresh"
        ) from None
    if not isinstance(data, expected):
        raise CorruptFileError(
            f"{path} is corrupt (a JSON {type(data).__name__}, not a {expected.__name__}); "
            f"move it aside to start this run folder afresh"
        )
    return data


# -- the tracker ------------------------------------------------------------------------
@dataclass
class Resource:
    id: str
    kind: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    module: str | None = None


@dataclass
class CleanupReport:
    released: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def raise_for_failures(self) -> None:
        if self.failures:
            raise CleanupError(self.failures)


def _another_live_process(entry: dict[str, Any], params: dict[str, Any]) -> bool:
    if entry["kind"] != "process" or "pid" not in entry["params"]:
        return False
    pid = int(entry["params"]["pid"])
    return pid != params.get("pid") and process_alive(pid, entry["params"].get("start_time"))


def _matches(entry: dict[str, Any], rid: str, pid: int | None) -> bool:
    if pid is None:
        return bool(entry["id"] == rid)
    same_pid = entry.get("params", {}).get("pid") == pid
    return same_pid and entry["id"] in (rid, f"{rid}#{pid}")


class ResourceTracker:
    """The run directory's ``resources.json``: what exists and how to release it."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "resources.json"

    @contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / ".resources.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries: list[dict[str, Any]] = read_json(self.path, [], list)
            yield entries
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entries, indent=2))
            tmp.replace(self.path)

    def add(self, kind: str, name: str, /, *, module: str | None = None, **params: Any) -> str:
        """Record a resource; a second add of the same kind and name replaces the first,
        except a process that still runs: that one stays tracked (as ``id#pid``), so
        cleanup still stops it (a blue-green deploy, or another process's server)."""
        rid = f"{kind}:{name}"
        with self._locked() as entries:
            for entry in entries:
                if entry["id"] == rid and _another_live_process(entry, params):
                    entry["id"] = f"{rid}#{entry['params']['pid']}"
            entries[:] = [e for e in entries if e["id"] != rid]
            entries.append(
                {"id": rid, "kind": kind, "name": name, "params": params, "module": module}
            )
        return rid

    def forget(self, rid: str, pid: int | None = None) -> None:
        """Drop ``rid``; with ``pid``, only the entry of that very process (under its own id
        or kept aside as ``rid#pid``): never an entry another process wrote since."""
        with self._locked() as entries:
            entries[:] = [e for e in entries if not _matches(e, rid, pid)]

    def list(self) -> list[Resource]:
        try:
            return [Resource(**e) for e in read_json(self.path, [], list)]
        except TypeError:  # entries that are not resources
            raise CorruptFileError(f"{self.path} is corrupt (entries are not resources)") from None

    def get(self, kind: str, name: str) -> Resource | None:
        rid = f"{kind}:{name}"
        return next((r for r in self.list() if r.id == rid), None)

    def release(self, rid: str) -> None:
        """Tear down one resource now and forget it."""
        resource = next((r for r in self.list() if r.id == rid), None)
        if resource is None:
            return
        _resolve(resource.kind, resource.module)(resource.params)
        self.forget(rid, resource.params.get("pid"))

    def cleanup(self, log: Callable[[str], None] = print) -> CleanupReport:
        """Release everything, newest first; failures are kept and reported, not raised."""
        report = CleanupReport()
        unwritten = ""
        resources = list(reversed(self.list()))
        # every server gets SIGTERM first, so they shut down side by side; the ordered
        # teardown below then only waits for what is still running
        for resource in resources:
            if resource.kind == "process":
                terminate_group(int(resource.params["pid"]), resource.params.get("start_time"))
        for resource in resources:
            try:
                _resolve(resource.kind, resource.module)(resource.params)
            except Exception as exc:  # keep going: one stuck resource must not strand others
                report.failures.append((resource.id, f"{type(exc).__name__}: {exc}"))
                log(f"cleanup: FAILED {resource.id}: {exc}")
                continue
            report.released.append(resource.id)
            log(f"cleanup: released {resource.id}")
            try:
                self.forget(resource.id, resource.params.get("pid"))
            except OSError as exc:  # released all the same: the next cleanup finds it gone
                unwritten = f"cannot record it in {self.path} ({exc.strerror or exc})"
        if unwritten:
            report.failures.append(("resources.json", unwritten))
        return report
