"""Per-notebook wall time (median of several papermill runs), where the time goes (seconds per
cell and the stage it runs), beside a floor notebook, against the targets of issue 16.

The floor notebook holds only the import lines of the same notebook, so the ratio shows what
the workshop's own steps cost above starting a kernel and importing the libraries.

    python bench/bench_notebooks.py [NAME ...] [--repeat N] [--jobs 2]

Targets: every scenario notebook 20 s or less after the first set-up; all six 60 s or less.
With every notebook, ``--jobs J`` also times ``mlops-workshop run --jobs J`` (what
``make run JOBS=J`` does) from start to end, ``--repeat`` times.

Both ways the warm launchers start servers are timed (``--start fork spawn``, the default):
``fork`` is Linux's default, ``spawn`` (a fresh interpreter per server) macOS's. The first
one named fills ``notebooks``; each has its medians under ``by_start``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from common import cell_profile, summary, timed, write_result

from mlops_helpers.notebooks import existing_notebooks, find_notebook, kernel_config, run_notebook

TARGET_EACH_S = 20.0
TARGET_ALL_S = 60.0


def floor_notebook(source: Path, target: Path) -> Path:
    """A notebook with one cell: every import line of ``source``."""
    nb = nbformat.read(source, as_version=4)
    imports: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            is_import = stripped.startswith(("import ", "from ")) and " import " in f" {stripped}"
            if is_import and not line.startswith((" ", "\t")) and stripped not in imports:
                imports.append(stripped)
    floor = nbformat.v4.new_notebook()
    floor.metadata = nb.metadata
    parameters = nbformat.v4.new_code_cell("backend = 'local'")
    parameters.metadata["tags"] = ["parameters"]
    # an import the notebook runs elsewhere (say, in the Seldon runtime) must not stop it
    guarded = [f"try:\n    {line}\nexcept ImportError:\n    pass" for line in imports]
    floor.cells = [parameters, nbformat.v4.new_code_cell("\n".join(guarded) or "pass")]
    nbformat.write(floor, target)
    return target


def run_floor(path: Path, out_dir: Path) -> None:
    import papermill

    papermill.execute_notebook(
        str(path),
        str(out_dir / path.name),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(path.parent),
        config=kernel_config(),
    )


def profile_notebook(name: str, repeat: int, out: Path) -> dict[str, Any]:
    """``repeat`` runs of one notebook: wall times, the floor, and the median run's cells."""
    source = find_notebook(name)
    floor = floor_notebook(source, source.parent / f".floor_{source.name}")
    try:
        floor_s = timed(lambda: run_floor(floor, out), repeat)
    finally:
        floor.unlink(missing_ok=True)
    seconds: list[float] = []
    profiles: list[list[dict[str, Any]]] = []
    errors: list[str] = []
    for attempt in range(repeat):
        run_dir = out / f"{name}-{attempt}"
        result = run_notebook(name, output_dir=run_dir)
        if result.error:
            errors.append(result.error)
        seconds.append(result.seconds)
        profiles.append(cell_profile(result.output))
        print(
            f"  {name} run {attempt + 1}/{repeat}: {result.seconds:.1f}s {result.status}",
            flush=True,
        )
    median_run = sorted(range(repeat), key=seconds.__getitem__)[repeat // 2]
    median = statistics.median(seconds)
    return {
        "notebook_s": summary(seconds),
        "floor_s": summary(floor_s),
        "ratio_median": median / statistics.median(floor_s),
        "target_s": None if name == "preflight" else TARGET_EACH_S,
        "within_target": name == "preflight" or median <= TARGET_EACH_S,
        "cells_of_median_run": profiles[median_run],
        "errors": errors,
    }


def run_all_at_once(jobs: int, repeat: int, out: Path) -> dict[str, Any]:
    """Wall seconds of the whole runner with ``jobs`` notebooks at a time."""
    cli = Path(sys.executable).with_name("mlops-workshop")
    seconds = []
    for attempt in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(
            [str(cli), "run", "--jobs", str(jobs), "--output-dir", str(out / f"jobs-{attempt}")],
            capture_output=True,
            text=True,
        )
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"mlops-workshop run --jobs {jobs} failed:\n{done.stdout[-2000:]}")
        print(
            f"  all notebooks, --jobs {jobs}, run {attempt + 1}/{repeat}: {seconds[-1]:.1f}s",
            flush=True,
        )
    return {"jobs": jobs, "wall_s": summary(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="also time the whole runner with this many notebooks at a time",
    )
    parser.add_argument(
        "--start",
        nargs="+",
        choices=("fork", "spawn"),
        default=["fork", "spawn"],
        help="how the warm launchers start servers (MLOPS_START); each is timed",
    )
    args = parser.parse_args()
    names = args.names or existing_notebooks()
    by_start: dict[str, dict[str, Any]] = {}
    before = {key: os.environ.get(key) for key in ("MLOPS_RUN_ROOT", "MLOPS_START")}
    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as tmp:
        out = Path(tmp)
        os.environ["MLOPS_RUN_ROOT"] = str(out / "runs")  # the kernels inherit it
        try:
            for start in args.start:
                os.environ["MLOPS_START"] = start  # and this, and their launchers too
                by_start[start] = {}
                (out / start).mkdir()
                for name in names:
                    result = profile_notebook(name, args.repeat, out / start)
                    by_start[start][name] = result
                    slowest = ", ".join(
                        f"{c['first_line'][:30]!r} {c['seconds']:.1f}s"
                        for c in result["cells_of_median_run"][:3]
                    )
                    print(
                        f"{name} ({start}): median {result['notebook_s']['median']:.1f}s "
                        f"(floor {result['floor_s']['median']:.1f}s); slowest cells: {slowest}",
                        flush=True,
                    )
            os.environ["MLOPS_START"] = args.start[0]
            at_once = (
                run_all_at_once(args.jobs, args.repeat, out)
                if args.jobs and not args.names
                else None
            )
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    results = by_start[args.start[0]]
    total = sum(r["notebook_s"]["median"] for r in results.values())
    complete = set(names) == set(existing_notebooks())
    write_result(
        "notebooks",
        {
            "repeat": args.repeat,
            "notebooks": results,
            "total_median_s": total,
            "start": args.start[0],
            "by_start": {
                start: {
                    "total_median_s": sum(r["notebook_s"]["median"] for r in done.values()),
                    "notebooks": {
                        name: {"notebook_s": r["notebook_s"]} for name, r in done.items()
                    },
                }
                for start, done in by_start.items()
            },
            "all_notebooks": complete,
            "all_at_once": at_once,
            "target_each_s": TARGET_EACH_S,
            "target_all_s": TARGET_ALL_S,
            "within_targets": all(r["within_target"] for r in results.values())
            and (not complete or total <= TARGET_ALL_S),
            "load_average_at_end": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
