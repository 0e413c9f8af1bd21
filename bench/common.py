"""Shared bits of the benchmarks: timing, medians, percentiles, JSON results."""

from __future__ import annotations

import json
import platform
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
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "processor": platform.machine()},
        **data,
    }
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    return path


def notebook_wall_times(scenario: str, target_s: float, runs: int = 3) -> dict[str, Any]:
    """The scenario notebook's wall time over ``runs`` papermill runs, against its target.

    Runs go to a temporary run root (the kernel inherits ``MLOPS_RUN_ROOT``); a failed run
    stops the benchmark, since its time would mean nothing.
    """
    import os
    import tempfile

    from mlops_helpers.notebooks import run_notebook

    times: list[float] = []
    before = os.environ.get("MLOPS_RUN_ROOT")
    with tempfile.TemporaryDirectory(prefix=f"bench-{scenario}-nb-") as out:
        os.environ["MLOPS_RUN_ROOT"] = str(Path(out) / "runs")
        try:
            for _ in range(runs):
                result = run_notebook(scenario, output_dir=Path(out))
                if result.error:
                    raise RuntimeError(f"{scenario} notebook failed: {result.error}")
                times.append(result.seconds)
                print(f"{scenario} notebook: {result.seconds:.1f} s", flush=True)
        finally:
            if before is None:
                os.environ.pop("MLOPS_RUN_ROOT", None)
            else:
                os.environ["MLOPS_RUN_ROOT"] = before
    median = statistics.median(times)
    return {"runs_s": times, "median_s": median, "target_s": target_s,
            "median_vs_target_ratio": round(median / target_s, 3),
            "within_target": median <= target_s}
