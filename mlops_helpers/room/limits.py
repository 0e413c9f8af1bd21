"""Memory and CPU limits per attendee that hold, with the strongest tool the machine allows.

- **cgroup v2** (a writable cgroup2 hierarchy with the memory, cpu and pids controllers, as
  on a VM or a privileged container): the room makes its own group,
  ``<cgroup2>/mlops-room-<id>/``, and a leaf per attendee with ``memory.max`` (swap 0),
  ``cpu.max`` and ``pids.max``; the attendee's server and everything it starts (kernels,
  scenario servers) are in the leaf. Past the memory limit the kernel's OOM killer ends the
  largest process in that leaf only: usually the kernel that allocated, never the room.
- **otherwise, a memory watchdog and process limits**: the hub watches each attendee's
  processes and, once they hold more than the memory limit together (PSS), SIGKILLs the
  attendee's largest process (see ``memory_watchdog``), as the cgroup's OOM killer would.
  ``setrlimit``, inherited by every child, adds a first line: each process may map at most
  the limit plus ``ADDRESS_HEADROOM`` (``RLIMIT_AS``: one huge allocation fails at once with
  ``MemoryError``; address space a process maps but does not use, libraries and reserved
  arenas, is the headroom), the attendee may run at most ``PIDS_MAX`` processes
  (``RLIMIT_NPROC``, counted per system user), and runs at lower priority (nice 10) so the
  hub and the other attendees keep answering. CPU time is not capped here: without a cgroup
  nothing can cap a rate.

``RoomLimits.describe()`` is the line the room page and the start-up message show.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from mlops_helpers.errors import ConfigError
from mlops_helpers.room.memory_watchdog import MemoryWatchdog

CONTROLLERS = ("memory", "cpu", "pids")
PIDS_MAX = 512  # a notebook with its scenario's servers runs under 100
NICE = 10
CPU_PERIOD_US = 100_000
ADDRESS_HEADROOM = 2**30  # a kernel maps ~0.5 GiB more than it uses (libraries, arenas)
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``1G`` → 1073741824, as JupyterHub reads ``mem_limit`` (powers of 1024)."""
    size = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        value = int(float(size[:-1]) * UNITS[size[-1]]) if size[-1:] in UNITS else int(size)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"memory limit {text!r}: use a size such as 1G or 512M")
    return value


def cgroup2_mount(mounts: Iterable[tuple[str, str]] | None = None) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` on a pure v2 machine,
    ``/sys/fs/cgroup/unified`` on a hybrid one), if anywhere. ``mounts``: (mount point, file
    system type) pairs; by default psutil's mount table (the package never reads /proc)."""
    if mounts is None:
        try:
            mounts = [(p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)]
        except OSError:
            return None
    for mountpoint, fstype in mounts:
        if fstype == "cgroup2":
            return Path(mountpoint)
    return None


def cgroup_usable(mount: Path) -> bool:
    """True when this process may make groups there with every controller we need."""
    try:
        available = set((mount / "cgroup.controllers").read_text().split())
    except OSError:
        return False
    return set(CONTROLLERS) <= available and os.access(mount, os.W_OK)


@dataclass(frozen=True)
class RoomLimits:
    kind: str  # "cgroup" or "rlimit"
    mem_bytes: int
    cpu: float
    cgroup_dir: str = ""  # the room's own group, when kind == "cgroup"
    per_user_processes: bool = True  # RLIMIT_NPROC only means "per attendee" with system users

    def describe(self) -> str:
        mem = f"{self.mem_bytes / 2**30:g} GiB"
        if self.kind == "cgroup":
            return (
                f"enforced by a cgroup v2 group per attendee: memory {mem} (no swap), "
                f"CPU {self.cpu:g} core(s), {PIDS_MAX} processes; past the memory limit the "
                "attendee's largest process (their kernel) is ended, nobody else's"
            )
        procs = f", at most {PIDS_MAX} processes per attendee" if self.per_user_processes else ""
        space = f"{(self.mem_bytes + ADDRESS_HEADROOM) / 2**30:g} GiB"
        return (
            f"a memory watchdog and process limits (no writable cgroup v2 here): memory {mem} "
            "per attendee, watched by the hub twice a second; past it the attendee's largest "
            "process (their kernel) is ended, nobody else's. Each process may map at most "
            f"{space} (RLIMIT_AS; a larger allocation fails at once with MemoryError){procs}; "
            f"CPU is not capped, attendees run at nice {NICE} so the room keeps answering"
        )

    def prepare(self, attendee: str) -> Path | None:
        """Before the attendee's server starts (in the hub, as root): their cgroup leaf."""
        if self.kind != "cgroup":
            return None
        room = Path(self.cgroup_dir)
        room.mkdir(exist_ok=True)
        enable = " ".join(f"+{c}" for c in CONTROLLERS)
        (room.parent / "cgroup.subtree_control").write_text(enable)
        (room / "cgroup.subtree_control").write_text(enable)
        leaf = room / attendee
        leaf.mkdir(exist_ok=True)
        (leaf / "memory.max").write_text(str(self.mem_bytes))
        if (leaf / "memory.swap.max").exists():
            (leaf / "memory.swap.max").write_text("0")
        (leaf / "cpu.max").write_text(f"{int(self.cpu * CPU_PERIOD_US)} {CPU_PERIOD_US}")
        (leaf / "pids.max").write_text(str(PIDS_MAX))
        return leaf

    def preexec(self, leaf: Path | None) -> Callable[[], None]:
        """What the server's process does before it runs (after fork, before dropping to the
        attendee's user): join the leaf, or set its process limits. Children inherit both."""

        def apply() -> None:
            if leaf is not None:
                (leaf / "cgroup.procs").write_text("0")  # "0": the writing process itself
                return
            space = self.mem_bytes + ADDRESS_HEADROOM
            resource.setrlimit(resource.RLIMIT_AS, (space, space))
            if self.per_user_processes:
                resource.setrlimit(resource.RLIMIT_NPROC, (PIDS_MAX, PIDS_MAX))
            os.nice(NICE)

        return apply

    def watchdog(
        self, attendee: str, processes: Callable[[], list[psutil.Process]], log: logging.Logger
    ) -> MemoryWatchdog | None:
        """Where no cgroup holds memory: a started watchdog over the attendee's processes."""
        if self.kind == "cgroup":
            return None
        return MemoryWatchdog(attendee, self.mem_bytes, processes, log).start()

    def release(self, attendee: str) -> None:
        """After the attendee's server stopped: remove their leaf (and the room's group once
        empty). A leaf with processes left cannot be removed; it stays until they exit."""
        if self.kind != "cgroup":
            return
        for group in (Path(self.cgroup_dir) / attendee, Path(self.cgroup_dir)):
            try:
                group.rmdir()
            except OSError:
                return


def choose_limits(
    mem_limit: str,
    cpu_limit: float,
    room_id: str,
    *,
    system_users: bool,
    mount: Path | None = None,
) -> RoomLimits:
    """The strongest limits this machine allows for a room (``room_id`` names its group)."""
    mem = parse_bytes(mem_limit)
    if cpu_limit <= 0:
        raise ConfigError(f"CPU limit {cpu_limit}: use a number of cores above 0, such as 1")
    mount = mount if mount is not None else cgroup2_mount()
    if os.geteuid() == 0 and mount is not None and cgroup_usable(mount):
        return RoomLimits("cgroup", mem, cpu_limit, str(mount / f"mlops-room-{room_id}"))
    return RoomLimits("rlimit", mem, cpu_limit, per_user_processes=system_users)
