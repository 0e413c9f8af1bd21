"""Peak memory of one notebook at a time, without a room: fast to repeat while cutting memory.

Runs ``mlops-workshop run NAME`` (papermill, local backend) in a child process marked as a
room attendee would be (``MLOPS_ROOM``/``MLOPS_ATTENDEE`` in its environment, inherited by the
kernel and every server the notebook starts), and samples the PSS of every marked process
every 0.25 s with the room benchmark's ``MemoryWatch``. Prints, per notebook, the peak PSS
and the largest processes at that peak; ``--json`` also writes them to
bench/results/notebook_memory.json.

    .venv/bin/python bench/bench_notebook_memory.py seldon_kind sagemaker_byo [--json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_room import MemoryWatch  # noqa: E402
from common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def measure(name: str) -> dict[str, object]:
    marker = tempfile.mkdtemp(prefix="nbmem-")
    env = {**os.environ, "MLOPS_ROOM": marker, "MLOPS_ATTENDEE": name}
    command = [str(ROOT / ".venv/bin/mlops-workshop"), "run", name, "--output-dir", marker]
    start = time.perf_counter()
    watch = MemoryWatch(marker)
    watch.interval_s = 0.25
    with watch:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
    return {
        "notebook": name,
        "ok": done.returncode == 0,
        "seconds": round(seconds, 1),
        "peak_pss_mib": round(watch.peak_pss.get(name, 0) / 2**20),
        "peak_rss_sum_mib": round(watch.peak_rss.get(name, 0) / 2**20),
        "processes_at_peak": watch.count_at_peak.get(name),
        "largest_processes_at_peak": watch.at_peak.get(name, []),
        "samples": watch.samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="seldon_kind, sagemaker_byo, ...")
    parser.add_argument("--json", action="store_true", help="write bench/results/")
    args = parser.parse_args()
    rows = []
    for name in args.names:
        row = measure(name)
        rows.append(row)
        print(
            f"{name}: {'ok' if row['ok'] else 'FAILED'} in {row['seconds']} s, "
            f"peak PSS {row['peak_pss_mib']} MiB in {row['processes_at_peak']} processes "
            f"(RSS summed {row['peak_rss_sum_mib']} MiB)"
        )
        for proc in row["largest_processes_at_peak"]:  # type: ignore[attr-defined]
            print(f"    {proc['pss_mib']:>5} MiB  {proc['process']}")
    if args.json:
        write_result("notebook_memory", {"notebooks": rows})
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
