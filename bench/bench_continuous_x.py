"""Benchmark of the continuous_x scenario.

1. time from ``POST /train`` to the new version serving in staging (train, evaluate, build,
   deploy_staging), with each stage's share, over several releases on one platform;
2. the staging app's ``/predict`` latency (p50, p99) for one iris row over a keep-alive
   connection;
3. the canary router: the observed canary share over 2,000 requests (setting 10 %) and
   what the extra hop costs (``/predict`` p50/p99 through the router against the app);
4. the notebook's median wall time over 3 papermill runs (target 14 s on a quiet machine: the
   second speed pass of issue 16).

Run: .venv/bin/python bench/bench_continuous_x.py  ->  bench/results/continuous_x.json
"""

from __future__ import annotations

import http.client
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import notebook_wall_times, summary, write_result  # noqa: E402

from mlops_helpers.config import Settings  # noqa: E402
from mlops_helpers.continuous_x.stages import PIPELINE, serving  # noqa: E402
from mlops_helpers.continuous_x.traffic import drive  # noqa: E402

RELEASES = 4
WARMUP, REQUESTS = 200, 2000
NOTEBOOK_RUNS, TARGET_SECONDS = 3, 14
RELEASE_STAGES = ("train", "evaluate", "build", "deploy_staging")


def context(root: Path, **params: object) -> Any:
    settings = Settings.load(
        "continuous_x", params={"run_root": str(root), **params}, env_file=root / "no.env"
    )
    return PIPELINE.context(settings=settings, log=lambda _: None)


def release_times(ctx: Any, root: Path) -> dict[str, Any]:
    totals, per_stage = [], {stage: [] for stage in RELEASE_STAGES}
    for i in range(RELEASES):
        # alternate the model so every release registers a new version with a new build
        run_ctx = context(root, C=1.0 + i)
        start = time.perf_counter()
        for stage in RELEASE_STAGES:
            t0 = time.perf_counter()
            PIPELINE.run_stage(stage, run_ctx)
            per_stage[stage].append(time.perf_counter() - t0)
        expected = ctx.state.get("candidate_version")
        if serving(ctx)["staging"] != expected:
            raise RuntimeError(f"staging does not serve version {expected}")
        totals.append(time.perf_counter() - start)
    stats = summary(totals)
    return {
        "train_to_staging_seconds": stats,
        "stage_median_seconds": {s: summary(v)["median"] for s, v in per_stage.items()},
        "stage_share_of_total": {
            s: round(summary(v)["median"] / stats["median"], 3) for s, v in per_stage.items()
        },
    }


def router_split(ctx: Any) -> dict[str, Any]:
    """Observed canary share and the router's own figures (canary and production deployed)."""
    for stage in ("promote_canary", "promote_production"):
        PIPELINE.run_stage(stage, ctx)
    router = ctx.state.get("router")["url"]
    answered = drive(router, REQUESTS)
    return {
        "router_split": {
            "requests": REQUESTS,
            "canary": answered["canary"],
            "observed_canary_share": round(answered["canary"] / REQUESTS, 4),
            "setting": 0.10,
        },
        "router_predict_latency_ms": predict_latency(router)["predict_latency_ms"],
    }


def predict_latency(url: str) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]})
    headers = {"Content-Type": "application/json"}

    def once() -> None:
        conn.request("POST", "/predict", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"predict answered {resp.status}")

    for _ in range(WARMUP):
        once()
    samples = []
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        once()
        samples.append(time.perf_counter() - t0)
    conn.close()
    return {
        "predict_latency_ms": {
            k: (v * 1000 if k != "n" else v) for k, v in summary(samples).items()
        }
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-continuous-x-") as tmp:
        root = Path(tmp) / "runs"
        ctx = context(root)
        data: dict[str, Any] = {"releases": RELEASES, "requests": REQUESTS}
        try:
            t0 = time.perf_counter()
            PIPELINE.run_stage("platform", ctx)
            data["platform_start_seconds"] = time.perf_counter() - t0
            data.update(release_times(ctx, root))
            data.update(predict_latency(ctx.state.get("deployments")["staging"]["url"]))
            data.update(router_split(ctx))
        finally:
            PIPELINE.run_stage("cleanup", ctx)
        data["notebook"] = notebook_wall_times("continuous_x", TARGET_SECONDS, NOTEBOOK_RUNS)
    write_result("continuous_x", data)


if __name__ == "__main__":
    main()
