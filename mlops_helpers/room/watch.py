"""Watch a room from outside while it works: per attendee, the ports their processes listen
on and the memory they hold. The room test checks that no two attendees share a port; the
room benchmark reports peak memory per attendee."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator

import psutil


def room_processes_by_attendee(room_dir: str) -> Iterator[tuple[str, psutil.Process]]:
    """Every live process started for an attendee of this room (their server, kernels, and
    whatever the notebooks started), with the attendee's name."""
    for proc in psutil.process_iter(["pid"]):
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("MLOPS_ROOM") == room_dir and env.get("MLOPS_ATTENDEE"):
            yield env["MLOPS_ATTENDEE"], proc


class RoomWatch:
    """Samples every ``interval_s`` seconds in a background thread until stopped."""

    def __init__(self, room_dir: str, interval_s: float = 0.5) -> None:
        self.room_dir = room_dir
        self.interval_s = interval_s
        self.ports: dict[int, set[str]] = defaultdict(set)
        self.peak_rss: dict[str, int] = defaultdict(int)
        self._cpu: dict[tuple[str, int], float] = {}  # (attendee, pid) -> last CPU seconds
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        rss: dict[str, int] = defaultdict(int)
        for name, proc in room_processes_by_attendee(self.room_dir):
            try:
                rss[name] += proc.memory_info().rss
                times = proc.cpu_times()
                self._cpu[(name, proc.pid)] = times.user + times.system
                for conn in proc.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN:
                        self.ports[conn.laddr.port].add(name)
            except (psutil.Error, OSError):
                continue
        for name, total in rss.items():
            self.peak_rss[name] = max(self.peak_rss[name], total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> RoomWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time per attendee, summed over every process seen (processes that lived less
        than one sampling interval are missed, so this is a slight undercount)."""
        total: dict[str, float] = defaultdict(float)
        for (name, _), seconds in self._cpu.items():
            total[name] += seconds
        return dict(total)

    def shared_ports(self) -> dict[int, set[str]]:
        return {port: names for port, names in self.ports.items() if len(names) > 1}
