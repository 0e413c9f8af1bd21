"""Benchmark of the seldon_kind scenario.

1. Prediction latency (p50, p99) and sequential throughput of each serving style: the four
   deployments the pipeline's ``serve_local`` stage starts (Seldon's Python microservice,
   one gunicorn worker each), one sample row (or one headline) per request, over keep-alive
   connections on loopback, fixed request counts (bounded);
2. how long ``ensure_seldon_runtime()`` takes when the environment already exists (reuse);
3. the notebook's median wall time over 3 papermill runs (target: 45 s or less).

Run: .venv/bin/python bench/bench_seldon_kind.py  ->  bench/results/seldon_kind.json
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import notebook_wall_times, summary, write_result  # noqa: E402

from mlops_helpers.config import Settings  # noqa: E402
from mlops_helpers.seldon_kind.catalog import DEPLOYMENTS, FOLDERS  # noqa: E402
from mlops_helpers.seldon_kind.runtime import ensure_seldon_runtime  # noqa: E402
from mlops_helpers.seldon_kind.serving import PREDICTIONS, sample_payload  # noqa: E402
from mlops_helpers.seldon_kind.stages import PIPELINE  # noqa: E402

WARMUP = 200
REQUESTS = 2000
NOTEBOOK_RUNS = 3
TARGET_NOTEBOOK_S = 45


def latency(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def once() -> None:
        conn.request("POST", PREDICTIONS, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {data[:200]!r}")

    for _ in range(WARMUP):
        once()
    samples = []
    start = time.perf_counter()
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        once()
        samples.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    stats = {k: v * 1000 if k != "n" else v for k, v in summary(samples).items()}
    return {"latency_ms": stats, "throughput_rps": REQUESTS / elapsed}


def servers() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-seldon-") as tmp:
        os.environ["MLOPS_RUN_ROOT"] = tmp
        settings = Settings.load("seldon_kind", params={"run_root": tmp, "attendee": "bench"})
        ctx = PIPELINE.context(settings=settings, log=lambda _m: None)
        try:
            PIPELINE.run(ctx, ["unit_tests", "train", "build", "serve_local"])
            urls = ctx.backend.environment("test").urls()
            models = ctx.state.get("models")
            for dep in DEPLOYMENTS:
                result = latency(
                    urls[settings.name(dep.name)], sample_payload(models[dep.name]["meta"])
                )
                result["style"] = FOLDERS[dep.folder].style
                out[dep.name] = result
                print(
                    f"{dep.name:16s} p50 {result['latency_ms']['p50']:.3f} ms, "
                    f"p99 {result['latency_ms']['p99']:.3f} ms, "
                    f"{result['throughput_rps']:.0f} rps",
                    flush=True,
                )
        finally:
            PIPELINE.run_stage("cleanup", ctx)
    return out


def runtime_reuse() -> dict[str, float]:
    start = time.perf_counter()
    ensure_seldon_runtime()
    return {"ensure_seldon_runtime_s": time.perf_counter() - start}


def main() -> int:
    results: dict[str, Any] = {
        "requests": REQUESTS,
        "warmup": WARMUP,
        "server": "seldon-core 1.18.2 microservice, 1 gunicorn worker",
        "runtime": runtime_reuse(),
        "servers": servers(),
    }
    results["notebook"] = notebook_wall_times("seldon_kind", TARGET_NOTEBOOK_S, NOTEBOOK_RUNS)
    write_result("seldon_kind", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
