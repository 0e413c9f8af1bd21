"""The workshop room under load: N attendees, each running two scenario notebooks at once in
their own server, for N = 1, 2, 4, 6 on this machine.

Per N: notebooks completed and failed, wall time of the whole room, median and p95 notebook
time, CPU-seconds and peak memory per attendee (sampled from outside, see
``mlops_helpers.room.watch``). From the largest N that completed without failures, the sizing
line for instructors: attendees per core.

    .venv/bin/python bench/bench_room.py [--sizes 1,2,4,6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import percentile, write_result  # noqa: E402

from mlops_helpers.room.hub import plan_room, start_room  # noqa: E402
from mlops_helpers.room.remote import attendee_session  # noqa: E402
from mlops_helpers.room.watch import RoomWatch  # noqa: E402

NOTEBOOKS = [
    f"mlops-workshop/notebooks/{nb}.ipynb" for nb in ("02_sagemaker_byo", "03_watson_openscale")
]
CODE = "bench-room-code"


def one_room(size: int) -> dict[str, object]:
    names = [f"b{size}x{i}" for i in range(1, size + 1)]
    with tempfile.TemporaryDirectory(prefix=f"room{size}-") as tmp:
        room = start_room(plan_room(Path(tmp)), workshop_code=CODE, instructor_code="bench-teacher")
        try:
            start = time.perf_counter()
            with RoomWatch(room.spec.room_dir) as watch, ThreadPoolExecutor(size) as pool:
                sessions = list(
                    pool.map(lambda n: attendee_session(room.url, n, CODE, NOTEBOOKS), names)
                )
            wall = time.perf_counter() - start
        finally:
            room.stop()
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
        "peak_rss_mib_per_attendee": round(statistics.mean(watch.peak_rss.values()) / 2**20)
        if watch.peak_rss
        else None,
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
    peak_gib = max(r["peak_rss_mib_per_attendee"] or 0 for r in rows) / 1024
    return {
        "cores": cores,
        "all_at_once_attendees_per_core": round(best / cores, 1),
        "cpu_s_per_notebook": round(cpu_per_notebook, 1),
        "pace_s_per_notebook": PACE_S,
        "attendees_per_core": int(PACE_S / cpu_per_notebook),
        "peak_gib_per_attendee_two_notebooks": round(peak_gib, 2),
        "rule": "attendees_per_core = pace / CPU-seconds of one notebook; memory per attendee "
        "is the other bound (peak with two notebooks open)",
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,2,4,6")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    rows = []
    for size in sizes:
        print(f"room of {size} ...", flush=True)
        rows.append(one_room(size))
        print(rows[-1], flush=True)
    cores = os.cpu_count() or 1
    write_result(
        "room",
        {
            "notebooks": NOTEBOOKS,
            "rooms": rows,
            "sizing": sizing(rows, cores) if 1 in sizes else None,
        },
    )
    return 0 if all(not r["notebooks_failed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
