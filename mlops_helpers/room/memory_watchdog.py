"""A memory watchdog per attendee, for machines where no cgroup enforces memory.

Process limits alone cannot hold an attendee's memory: ``RLIMIT_AS`` bounds each process's
address space, not what the attendee's processes hold together, and a kernel that hits it
only gets a ``MemoryError`` and lives on, holding what it has. So, as earlyoom does for a
whole machine, the hub (root, so it can read and signal every attendee's processes) samples
each attendee's processes twice a second, and when their PSS together (each shared page
split between the processes that map it: what the attendee adds to the machine) is past the
attendee's memory limit, it SIGKILLs their largest process (their kernel, when a kernel
allocated), never their server, and never anyone else's process. That is what a cgroup's OOM
killer does inside an attendee's group.

Cheap while under the limit: PSS (read from ``smaps_rollup``) is only summed once the RSS of
the attendee's processes, which never counts less, is past the limit.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psutil

INTERVAL_S = 0.5
SERVER = "jupyterhub-singleuser"  # ending the server would end the attendee's whole session


@dataclass(frozen=True)
class Ended:
    pid: int
    command: str
    pss: int  # bytes the ended process held
    total: int  # bytes the attendee held together, over the limit


def processes_of_uid(uid: int) -> Callable[[], list[psutil.Process]]:
    """An attendee's processes: everything their system user runs."""

    def processes() -> list[psutil.Process]:
        every = psutil.process_iter(["uids"])
        return [p for p in every if p.info["uids"] and p.info["uids"].real == uid]

    return processes


def _command(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return f"pid {proc.pid}"


def end_largest_over(limit: int, processes: list[psutil.Process]) -> Ended | None:
    """If ``processes`` hold more than ``limit`` bytes together (PSS), SIGKILL the largest of
    them that is not the attendee's server, and say which; else None."""
    rss = 0
    for proc in processes:
        try:
            rss += proc.memory_info().rss
        except psutil.Error:
            continue
    if rss <= limit:  # PSS <= RSS: nothing to measure closer
        return None
    sizes: list[tuple[int, psutil.Process]] = []
    for proc in processes:
        try:
            sizes.append((proc.memory_full_info().pss, proc))
        except psutil.Error:
            continue
    total = sum(pss for pss, _ in sizes)
    if total <= limit:
        return None
    candidates = [(pss, p) for pss, p in sizes if SERVER not in _command(p)]
    if not candidates:
        return None
    pss, largest = max(candidates, key=lambda pair: pair[0])
    command = _command(largest)
    try:
        largest.send_signal(signal.SIGKILL)
    except psutil.Error:
        return None
    return Ended(largest.pid, command[:120], pss, total)


class MemoryWatchdog:
    """Watches one attendee in a daemon thread, from ``start()`` until ``stop()``."""

    def __init__(
        self,
        name: str,
        limit: int,
        processes: Callable[[], list[psutil.Process]],
        log: logging.Logger,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.name = name
        self.limit = limit
        self.processes = processes
        self.log = log
        self.interval_s = interval_s
        self.ended: list[Ended] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"memory-{name}", daemon=True)

    def check(self) -> Ended | None:
        ended = end_largest_over(self.limit, self.processes())
        if ended is not None:
            self.ended.append(ended)
            self.log.warning(
                "memory watchdog: %s held %.2f GiB, past their %.2f GiB limit: ended their "
                "largest process %d (%.2f GiB): %s",
                self.name,
                ended.total / 2**30,
                self.limit / 2**30,
                ended.pid,
                ended.pss / 2**30,
                ended.command,
            )
        return ended

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # a watchdog that stops watching holds nothing
                self.log.exception("memory watchdog: %s: check failed", self.name)

    def start(self) -> MemoryWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
