"""Checks that every scenario's tests share: leftover processes, listening sockets
(psutil, so they run on Linux and macOS alike; on Linux the socket tables are read from
/proc/net directly, which is far cheaper for a sampler)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

from mlops_helpers.paths import project_root

ROOT = project_root()
# Linux's socket tables, read directly by the listening-socket sampler (cheap); where they
# are not there (macOS), psutil answers instead
PROC_NET = Path("/proc/net")


def _ancestors() -> set[int]:
    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.parents())}


def _marked(proc: psutil.Process, marker: str) -> bool:
    """``marker`` is in the command line or the environment of ``proc``."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if marker in " ".join(proc.cmdline()):
            return True
        return any(marker in key or marker in value for key, value in proc.environ().items())
    except psutil.Error:  # gone, a zombie, or another user's process
        return False


def marked_processes(marker: str) -> list[psutil.Process]:
    """Live processes (not us or our parents) whose command line or environment has
    ``marker``. Tests set ``MLOPS_RUN_ROOT`` to a temporary folder; every process a notebook
    or stage starts inherits it, so a survivor is found even when its command line is
    generic. psutil, not /proc: the same on Linux and macOS."""
    mine = _ancestors()
    return [p for p in psutil.process_iter() if p.pid not in mine and _marked(p, marker)]


def leftover_processes(marker: str) -> list[str]:
    """``marked_processes`` as "pid: command line" lines, for an assertion message."""
    found = []
    for proc in marked_processes(marker):
        with contextlib.suppress(psutil.Error):
            found.append(f"{proc.pid}: {' '.join(proc.cmdline())}")
    return found


def stop_leftovers(marker: str) -> list[str]:
    """``leftover_processes``, then stop them (each with its whole process group), so a
    failing test reports the survivors without leaving them running on the machine."""
    from mlops_helpers.resources import stop_process_group

    found = leftover_processes(marker)
    groups = set()
    for proc in marked_processes(marker):
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(proc.pid))
    for pgid in groups - {os.getpgid(0)}:
        stop_process_group(pgid, grace=5.0)
    return found


Socket = tuple[int, str, int]  # (pid, local address, local port)


def _with_descendants(pids: set[int]) -> set[int]:
    """``pids`` and every descendant, from one pass over the process table (psutil's
    ``children(recursive=True)`` makes a pass per process: a sampler pays it twice a second)."""
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        children.setdefault(proc.info["ppid"], []).append(proc.pid)
    tree, todo = set(pids), list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in tree:
                tree.add(child)
                todo.append(child)
    return tree


def _proc_net_address(field: str, family: int) -> tuple[str, int]:
    """An address of /proc/net/{tcp,udp}[6] ("0100007F:1F90"): 32-bit words in host order."""
    address, port = field.split(":")
    raw = bytes.fromhex(address)
    if sys.byteorder == "little":  # each word printed as the CPU holds it: turn it back
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw), int(port, 16)


def _listening_by_inode() -> dict[int, tuple[str, int]] | None:
    """inode -> (address, port) of every listening TCP and bound, unconnected UDP socket,
    from Linux's /proc/net tables (None elsewhere). Cheap: no process's descriptors read."""
    tables = {
        "tcp": socket.AF_INET,
        "tcp6": socket.AF_INET6,
        "udp": socket.AF_INET,
        "udp6": socket.AF_INET6,
    }
    found: dict[int, tuple[str, int]] = {}
    for name, family in tables.items():
        try:
            lines = (PROC_NET / name).read_text().splitlines()[1:]
        except OSError:
            return None
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            listening = fields[3] == "0A" if name.startswith("tcp") else remote_port == 0
            if listening:
                found[int(fields[9])] = _proc_net_address(fields[1], family)
    return found


def _linux_listening(pids: set[int]) -> list[Socket] | None:
    """``listening_sockets`` the Linux way: the socket tables once, then only the descriptors
    of ``pids`` (psutil's system-wide read opens every descriptor of every process, twice a
    second per sampler: the largest cost of a test worker). A socket several processes of
    the tree hold (a forked child keeps its parent's) is named once, for the lowest pid."""
    listening = _listening_by_inode()
    if listening is None:
        return None
    found: dict[int, Socket] = {}
    for pid in sorted(pids, reverse=True):
        with contextlib.suppress(OSError):  # gone, or another user's process
            for fd in os.scandir(PROC_NET.parent / str(pid) / "fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd.path)
                    if target.startswith("socket:["):
                        inode = int(target[8:-1])
                        if inode in listening:
                            found[inode] = (pid, *listening[inode])
    return list(found.values())


def _inet_connections(pids: set[int]) -> list[tuple[int, Any]]:
    """(pid, connection) for the inet sockets of ``pids``, where /proc/net is not there
    (macOS): one system-wide read where the OS allows it, per process where it does not
    (macOS needs root for the system-wide one)."""
    try:
        return [(c.pid, c) for c in psutil.net_connections(kind="inet") if c.pid in pids]
    except psutil.AccessDenied:
        pass
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):  # gone, a zombie, or another user's process
            found += [(pid, conn) for conn in psutil.Process(pid).net_connections(kind="inet")]
    return found


def listening_sockets(roots: str | Iterable[int]) -> list[Socket]:
    """Sockets that accept traffic from others, opened by a tree of processes.

    ``roots`` is a marker (as for ``leftover_processes``: the run root every process of a
    run inherits) or some pids; their descendants are included. A TCP socket counts when
    it is in LISTEN state; a UDP socket when it is bound to a port. Use it while a run is
    up: every address in the answer must be loopback (127.0.0.1 or ::1).
    """
    starts = (
        marked_processes(roots)
        if isinstance(roots, str)
        else [psutil.Process(pid) for pid in roots if psutil.pid_exists(pid)]
    )
    tree = _with_descendants({proc.pid for proc in starts})
    on_linux = _linux_listening(tree)
    if on_linux is not None:
        return sorted(set(on_linux))
    found: set[Socket] = set()
    for pid, conn in _inet_connections(tree):
        tcp_listen = conn.type == socket.SOCK_STREAM and conn.status == psutil.CONN_LISTEN
        udp_bound = conn.type == socket.SOCK_DGRAM and conn.laddr and not conn.raddr
        if tcp_listen or udp_bound:
            found.add((pid, conn.laddr.ip, conn.laddr.port))
    return sorted(found)


class SocketWatch:
    """Samples ``listening_sockets(marker)`` in the background while a run is up::

    with SocketWatch(str(run_root)) as watch:
        ...  # the run
    assert watch.seen and not_loopback(watch.seen) == []
    """

    def __init__(self, marker: str, interval: float = 0.5) -> None:
        self.marker = marker
        self.interval = interval
        self.seen: set[Socket] = set()
        self.commands: dict[int, list[str]] = {}  # pid -> command line, of each pid seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):  # a process exits while we look
                found = listening_sockets(self.marker)
                self.seen.update(found)
                for pid in {pid for pid, _address, _port in found} - set(self.commands):
                    self.commands[pid] = psutil.Process(pid).cmdline()
            self._stop.wait(self.interval)

    def __enter__(self) -> SocketWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def not_loopback(sockets: Iterable[Socket]) -> list[Socket]:
    """The sockets of ``sockets`` that others on the network could reach."""
    return [s for s in sockets if not _is_loopback(s[1])]


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    # gRPC binds 127.0.0.1 as an IPv6 socket on ::ffff:127.0.0.1, which Python < 3.13
    # does not call loopback
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
