"""Benchmark of the dvc_cml scenario.

1. per-stage wall time of one full local run (the learner's sandbox, then checkout ...
   commit_lock, cleanup, on the sandbox as the workspace) and of the notebook's experiment
   step (two ``dvc exp run --temp --set-param``, side by side, plus ``dvc exp show``);
2. the cost of one DVC call in the working repo (``dvc status --json``, 5 calls; it runs
   DVC's CLI in this process, see ``Shell.dvc``), and its share of the stage time;
3. the notebook's median wall time over 3 papermill runs (target: 16 s or less; the
   sandbox's ``main`` comes from DVC's run-cache after the first run, see ``sandbox.py``).

Run: .venv/bin/python bench/bench_dvc_cml.py  ->  bench/results/dvc_cml.json
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import notebook_wall_times, summary, timed, write_result  # noqa: E402

from mlops_helpers.config import Settings  # noqa: E402
from mlops_helpers.dvc_cml.experiments import experiment_table, run_experiments  # noqa: E402
from mlops_helpers.dvc_cml.stages import PIPELINE, create_sandbox, shell  # noqa: E402

NOTEBOOK_RUNS = 3
DVC_CALLS = 5
TARGET_SECONDS = 16.0


def stage_timings(root: Path) -> dict[str, Any]:
    def context(**params: Any) -> Any:
        settings = Settings.load(
            "dvc_cml",
            params={"run_root": str(root), "attendee": "bench", **params},
            env_file=root / "no.env",
        )
        return PIPELINE.context(settings, log=lambda _msg: None)

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    ctx = context(**create_sandbox(context()))
    seconds["sandbox (create_sandbox, not a stage)"] = time.perf_counter() - start
    for name in PIPELINE.stage_names():
        if name == "cleanup":
            continue
        start = time.perf_counter()
        PIPELINE.run_stage(name, ctx)
        seconds[name] = time.perf_counter() - start
    sh = shell(ctx)
    start = time.perf_counter()
    run_experiments(sh, [{"train.C": 0.01}, {"train.C": 10.0}])
    experiment_table(sh)
    seconds["experiments (2 variants + exp show)"] = time.perf_counter() - start
    dvc_call = timed(lambda: sh.dvc_json("status"), DVC_CALLS)
    start = time.perf_counter()
    PIPELINE.run_stage("cleanup", ctx)
    seconds["cleanup"] = time.perf_counter() - start
    total = sum(seconds.values())
    return {
        "stage_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "stages_total_seconds": round(total, 3),
        "dvc_status_call_seconds": summary(dvc_call),
        "dvc_status_call_vs_stages_total_ratio": round(statistics.median(dvc_call) / total, 4),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dvc-cml-") as tmp:
        data = stage_timings(Path(tmp) / "stages")
        data["notebook"] = notebook_wall_times("dvc_cml", TARGET_SECONDS, NOTEBOOK_RUNS)
    write_result("dvc_cml", data)


if __name__ == "__main__":
    main()
