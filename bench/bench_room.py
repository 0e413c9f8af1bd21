"""The workshop room under load: N attendees, each running all five scenario notebooks in
their own server, two at a time (01+02, 03+04, then 05), for N = 1, 2, 4 on this machine.

Per N: notebooks completed and failed, wall time of the whole room, median and p95 notebook
time, CPU-seconds and peak memory per attendee (sampled from outside every 0.5 s, see
``mlops_helpers.room.watch``): the attendee's server, kernels and the scenarios' own servers.
Memory is counted two ways: RSS summed over the attendee's processes (counts the shared
libraries of every process again) and PSS (each shared page split between the processes
that map it: what an attendee adds to the machine). The largest processes at the attendee's
peak are kept, to show where the memory goes. From these, the sizing line for instructors.

Run as root (as a workshop VM runs the room) each attendee is a system user with their
limits on, as in a real room. The CPU is shared with other work; the load average before and
after is recorded.

    .venv/bin/python bench/bench_room.py [--sizes 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402
from common import percentile, write_result  # noqa: E402

from mlops_helpers.room.accounts import remove_system_users, running_as_root  # noqa: E402
from mlops_helpers.room.hub import plan_room, start_room  # noqa: E402
from mlops_helpers.room.remote import Attendee, NotebookRun  # noqa: E402
from mlops_helpers.room.watch import RoomWatch, room_processes_by_attendee  # noqa: E402

PAIRS = [
    ("01_seldon_kind", "02_sagemaker_byo"),
    ("03_watson_openscale", "04_dvc_cml"),
    ("05_continuous_x",),
]
NOTEBOOKS = [f"mlops-workshop/notebooks/{nb}.ipynb" for pair in PAIRS for nb in pair]
CODE = "bench-room-code"
TOP = 8  # processes kept per attendee at their peak


class MemoryWatch(RoomWatch):
    """RoomWatch plus PSS per attendee, and the largest processes at each attendee's peak."""

    def __init__(self, room_dir: str) -> None:
        super().__init__(room_dir)
        self.peak_pss: dict[str, int] = {}
        self.at_peak: dict[str, list[dict[str, object]]] = {}
        self.count_at_peak: dict[str, int] = {}

    def sample(self) -> None:
        super().sample()
        pss: dict[str, int] = {}
        procs: dict[str, list[dict[str, object]]] = {}
        for name, proc in room_processes_by_attendee(self.room_dir):
            try:
                info = proc.memory_full_info()
                argv = proc.cmdline()
            except (OSError, psutil.Error):
                continue
            pss[name] = pss.get(name, 0) + info.pss
            procs.setdefault(name, []).append(
                {
                    "process": " ".join(Path(a).name if a.startswith("/") else a for a in argv)[
                        :90
                    ],
                    "rss_mib": round(info.rss / 2**20),
                    "vms_mib": round(info.vms / 2**20),  # what RLIMIT_AS counts
                    "pss_mib": round(info.pss / 2**20),
                }
            )
        for name, total in pss.items():
            if total > self.peak_pss.get(name, 0):
                self.peak_pss[name] = total
                ranked = sorted(procs[name], key=lambda p: -int(p["pss_mib"]))  # type: ignore[call-overload]
                self.at_peak[name] = ranked[:TOP]
                self.count_at_peak[name] = len(ranked)


def two_at_a_time(hub_url: str, name: str) -> list[NotebookRun]:
    """One attendee's day: sign in, start the server, run the five notebooks, two at once."""
    attendee = Attendee(hub_url, name, secrets.token_urlsafe(12), workshop_code=CODE)
    attendee.sign_in()
    attendee.start_server()
    runs: list[NotebookRun] = []
    for pair in PAIRS:
        paths = [f"mlops-workshop/notebooks/{nb}.ipynb" for nb in pair]
        with ThreadPoolExecutor(len(paths)) as pool:
            runs += pool.map(lambda path: attendee.run_notebook(path, 900), paths)
    return runs


def mib(value: float) -> int:
    return round(value / 2**20)


def one_room(size: int) -> dict[str, object]:
    names = [f"b{size}x{i}" for i in range(1, size + 1)]
    with tempfile.TemporaryDirectory(prefix=f"room{size}-") as tmp:
        spec = plan_room(Path(tmp), user_prefix=f"b{secrets.token_hex(2)}-")
        room = start_room(spec, workshop_code=CODE, instructor_code="bench-teacher")
        try:
            start = time.perf_counter()
            with MemoryWatch(room.spec.room_dir) as watch, ThreadPoolExecutor(size) as pool:
                sessions = list(pool.map(lambda n: two_at_a_time(room.url, n), names))
            wall = time.perf_counter() - start
        finally:
            room.stop()
            if running_as_root():
                remove_system_users(spec.homes)
    runs = [run for session in sessions for run in session]
    seconds = [run.seconds for run in runs if run.ok]
    cpu = watch.cpu_seconds()
    return {
        "attendees": size,
        "notebooks_completed": sum(run.ok for run in runs),
        "notebooks_failed": sum(not run.ok for run in runs),
        "failures": [f"{run.attendee} {run.path}: {run.error}" for run in runs if not run.ok],
        "wall_s": round(wall, 1),
        "notebook_median_s": round(statistics.median(seconds), 1) if seconds else None,
        "notebook_p95_s": round(percentile(seconds, 95), 1) if seconds else None,
        "cpu_s_per_attendee": round(statistics.mean(cpu.values()), 1) if cpu else None,
        "peak_rss_mib_per_attendee": mib(statistics.mean(watch.peak_rss.values()))
        if watch.peak_rss
        else None,
        "peak_pss_mib_per_attendee": mib(statistics.mean(watch.peak_pss.values()))
        if watch.peak_pss
        else None,
        "peak_pss_mib_max": mib(max(watch.peak_pss.values())) if watch.peak_pss else None,
        "processes_at_peak": watch.count_at_peak.get(names[0]),
        "largest_processes_at_peak": watch.at_peak.get(names[0], []),
        "samples": watch.samples,
    }


PACE_S = 600  # a workshop's pace: each attendee runs one whole notebook per ten minutes


def sizing(rows: list[dict[str, object]], cores: int) -> dict[str, object]:
    """Two answers for instructors. All at once: the largest room whose median notebook time
    stays within twice one attendee's. At a workshop's pace: CPU-seconds of one notebook
    against ``PACE_S`` per core, and the memory an attendee holds with two notebooks open."""
    alone = next(r for r in rows if r["attendees"] == 1)["notebook_median_s"]
    good = [
        r
        for r in rows
        if not r["notebooks_failed"]
        and r["notebook_median_s"]
        and r["notebook_median_s"] <= 2 * alone
    ]
    best = max((r["attendees"] for r in good), default=1)
    cpu = [r["cpu_s_per_attendee"] / len(NOTEBOOKS) for r in rows if r["cpu_s_per_attendee"]]
    cpu_per_notebook = statistics.median(cpu)
    peak_gib = max(r["peak_pss_mib_max"] or 0 for r in rows) / 1024
    peak_rss_gib = max(r["peak_rss_mib_per_attendee"] or 0 for r in rows) / 1024
    return {
        "cores": cores,
        "all_at_once_attendees_per_core": round(best / cores, 1),
        "cpu_s_per_notebook": round(cpu_per_notebook, 1),
        "pace_s_per_notebook": PACE_S,
        "attendees_per_core": int(PACE_S / cpu_per_notebook),
        "peak_gib_per_attendee_two_notebooks": round(peak_gib, 2),
        "peak_rss_sum_gib_per_attendee_two_notebooks": round(peak_rss_gib, 2),
        "rule": "attendees_per_core = pace / CPU-seconds of one notebook; memory per attendee "
        "is the other bound (largest peak PSS of any attendee, two notebooks running)",
    }


def plan_limits() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return plan_room(Path(tmp)).limits


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,2,4")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    load_before = os.getloadavg()
    rows: list[dict[str, object]] = []
    for size in sizes:
        print(f"room of {size} ...", flush=True)
        rows.append(one_room(size))
        print(rows[-1], flush=True)
        save(rows, load_before)  # after every room: a run cut short keeps what it measured
    return 0 if all(not r["notebooks_failed"] for r in rows) else 1


def save(rows: list[dict[str, object]], load_before: tuple[float, ...]) -> None:
    write_result(
        "room",
        {
            "notebooks": NOTEBOOKS,
            "two_at_a_time": [list(pair) for pair in PAIRS],
            "isolation": "system users" if running_as_root() else "one user",
            "limits": plan_limits(),
            "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
            "rooms": rows,
            "sizing": sizing(rows, os.cpu_count() or 1)
            if any(r["attendees"] == 1 for r in rows)
            else None,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
