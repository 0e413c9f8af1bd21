"""Shared bits of the benchmarks: timing, medians, percentiles, JSON results."""

from __future__ import annotations

import json
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def timed(func: Callable[[], Any], repeat: int) -> list[float]:
    """Wall time of ``repeat`` calls of ``func``, in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
        **data,
    }
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    return path


def fresh_copy(source: Path, target: Path) -> None:
    """What a clone of the tree holds: tracked files plus new ones git does not ignore (no
    .venv, .venvs, .tools, runs or build)."""
    import shutil
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    target.mkdir(parents=True)
    for name in filter(None, listed):
        path = source / name.decode()
        if path.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name.decode())


def remove_tree(path: Path) -> None:
    """``rm -rf``: much faster than shutil.rmtree on a package cache of many small files."""
    import subprocess

    subprocess.run(["rm", "-rf", str(path)], check=True)


STAGE_CALL = re.compile(r"""run(?:_stage)?\(\s*["'](\w+)["']""")


def cell_profile(executed: Path) -> list[dict[str, Any]]:
    """Where an executed notebook's time went: every code cell's seconds (papermill records
    them), the stage it runs (``run("deploy")``) and its first line, slowest first."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        seconds = (cell.metadata.get("papermill") or {}).get("duration") or 0.0
        first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
        stages = STAGE_CALL.findall(cell.source)
        cells.append(
            {
                "cell": index,
                "seconds": round(float(seconds), 3),
                "stages": stages,
                "first_line": first[:80],
            }
        )
    return sorted(cells, key=lambda c: -c["seconds"])


def notebook_wall_times(scenario: str, target_s: float, runs: int = 3) -> dict[str, Any]:
    """The scenario notebook's wall time over ``runs`` papermill runs, against its target.

    Runs go to a temporary run root (the kernel inherits ``MLOPS_RUN_ROOT``); a failed run
    stops the benchmark, since its time would mean nothing.
    """
    import os
    import tempfile

    from mlops_helpers.notebooks import run_notebook

    times: list[float] = []
    profiles: list[list[dict[str, Any]]] = []
    before = os.environ.get("MLOPS_RUN_ROOT")
    with tempfile.TemporaryDirectory(prefix=f"bench-{scenario}-nb-") as out:
        os.environ["MLOPS_RUN_ROOT"] = str(Path(out) / "runs")
        try:
            for _ in range(runs):
                result = run_notebook(scenario, output_dir=Path(out))
                if result.error:
                    raise RuntimeError(f"{scenario} notebook failed: {result.error}")
                times.append(result.seconds)
                profiles.append(cell_profile(result.output))
                print(f"{scenario} notebook: {result.seconds:.1f} s", flush=True)
        finally:
            if before is None:
                os.environ.pop("MLOPS_RUN_ROOT", None)
            else:
                os.environ["MLOPS_RUN_ROOT"] = before
    median = statistics.median(times)
    median_run = sorted(range(len(times)), key=times.__getitem__)[len(times) // 2]
    return {
        "runs_s": times,
        "median_s": median,
        "target_s": target_s,
        "median_vs_target_ratio": round(median / target_s, 3),
        "within_target": median <= target_s,
        "cells_of_median_run": profiles[median_run],
    }
