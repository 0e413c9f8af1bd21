"""Benchmark of the watson_openscale scenario (local backend).

1. scoring latency of the deployment (FastAPI + uvicorn, payload logged to SQLite on every
   request): p50/p99 for 1-row and 100-row WML payloads, sequential keep-alive requests;
2. one quality monitor run over 1,000 feedback rows (read the rows, score them through the
   deployment, compute the metrics, record run and metrics), repeated;
3. the scoring endpoint under the shared fuzzer (tests/faults/fuzz.py): cases, 4xx, 5xx;
4. the whole stage list on the ibm backend (the real ibm-watsonx-ai and ibm-watson-openscale
   clients) against the IBM Cloud double, in one process: wall time per stage;
5. the local stage list with each stage in its own ``mlops-workshop`` process (as the
   Jenkinsfile runs it): wall and CPU seconds per stage, where a Jenkins build's time goes;
6. the notebook's median wall time over 3 papermill runs (target: 9 s or less).

Run: .venv/bin/python bench/bench_watson_openscale.py  ->  bench/results/watson_openscale.json
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
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import notebook_wall_times, summary, timed, write_result  # noqa: E402

from mlops_helpers.config import Settings  # noqa: E402
from mlops_helpers.watson_openscale import payload  # noqa: E402
from mlops_helpers.watson_openscale.stages import PIPELINE  # noqa: E402

WARMUP = 100
REQUESTS = {1: 2000, 100: 500}
FEEDBACK_ROWS = 1000
MONITOR_REPEATS = 5


def scoring_latency(
    scoring_url: str, fields: list[str], rows: list[list[float]], n: int, count: int
) -> dict[str, Any]:
    part = (rows * (n // len(rows) + 1))[:n]
    body = json.dumps(payload.from_rows(fields, part)).encode()
    url = urlsplit(scoring_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def once() -> None:
        conn.request("POST", url.path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"scoring answered {resp.status}: {data[:200]!r}")

    timed(once, WARMUP)
    start = time.perf_counter()
    samples = timed(once, count)
    elapsed = time.perf_counter() - start
    conn.close()
    stats = {k: v * 1000 if k != "n" else v for k, v in summary(samples).items()}
    print(
        f"scoring {n} row(s): p50 {stats['p50']:.3f} ms, p99 {stats['p99']:.3f} ms, "
        f"{count / elapsed:.0f} rps",
        flush=True,
    )
    return {"latency_ms": stats, "throughput_rps": count / elapsed}


def monitor_runs(ctx: Any) -> dict[str, Any]:
    subscription = ctx.state.get("subscription")
    meta = ctx.state.get("setup")["meta"]
    from mlops_helpers.watson_openscale.model_source import load_model_module

    module = load_model_module()
    split = module.load_data(module.load_config())
    # distinct rows: feedback is stored once per content, so a repeated row would not count
    X = [*split.X_test.tolist(), *split.X_train.tolist()]
    y = [*split.y_test.tolist(), *split.y_train.tolist()]
    rows = [[*X[i], y[i]] for i in range(FEEDBACK_ROWS)]
    ctx.backend.log_feedback(subscription, [*meta["feature_fields"], meta["label_column"]], rows)
    results: list[dict[str, Any]] = []
    samples = timed(
        lambda: results.append(
            ctx.backend.run_quality_monitor(subscription, subscription["thresholds"])
        ),
        MONITOR_REPEATS,
    )
    last = results[-1]
    assert last["status"] == "finished" and last["n_rows"] == FEEDBACK_ROWS, last
    stats = {k: v * 1000 if k != "n" else v for k, v in summary(samples).items()}
    print(
        f"monitor run over {FEEDBACK_ROWS} feedback rows: median {stats['median']:.1f} ms",
        flush=True,
    )
    return {
        "rows": FEEDBACK_ROWS,
        "time_ms": stats,
        "accuracy": next(m["value"] for m in last["metrics"] if m["metric"] == "accuracy"),
    }


def fuzz(ctx: Any) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.faults.fuzz import fuzz_endpoint

    fields = ctx.state.get("setup")["meta"]["feature_fields"]
    report = fuzz_endpoint(
        ctx.state.get("deployment")["scoring_url"], payload.from_rows(fields, [[1.0] * len(fields)])
    )
    found = report.as_dict()
    print(f"fuzz: {found['cases']} cases, {found['4xx']} 4xx, {found['5xx']} 5xx", flush=True)
    return found


def ibm_double_run() -> dict[str, Any]:
    """Every stage against the IBM Cloud double (HTTPS on loopback, IBM's published runtimes;
    the model trained in .venvs/ibm-runtime), one process."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.doubles.ibm_cloud import running_double

    with (
        tempfile.TemporaryDirectory(prefix="bench-wos-ibm-") as tmp,
        running_double(Path(tmp) / "double") as double,
    ):
        saved = dict(os.environ)
        os.environ.update({**double.environ(), "REQUESTS_CA_BUNDLE": str(double.ca_bundle)})
        try:
            settings = Settings.load(
                "watson_openscale",
                params={
                    "run_root": tmp,
                    "attendee": "bench",
                    "backend": "ibm",
                    "poll_interval": 0.05,
                },
                defaults=PIPELINE.defaults,
                env_file=Path(tmp) / "no.env",
            )
            ctx = PIPELINE.context(settings, log=lambda _: None)
            stages: dict[str, float] = {}
            for name in PIPELINE.stage_names():
                start = time.perf_counter()
                PIPELINE.run_stage(name, ctx)
                stages[name] = time.perf_counter() - start
            requests = len(double.log)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    total = sum(stages.values())
    print(f"ibm backend against the double: {total:.1f} s, {requests} HTTP requests", flush=True)
    return {"total_s": total, "stages_s": stages, "http_requests": requests}


def local_stage_processes() -> dict[str, Any]:
    """Each local stage in its own ``mlops-workshop`` process: wall and CPU seconds (the
    stage's process and the children it waited for; the deployment runtime started by
    ``space`` warms up beside the later stages and is not counted)."""
    import resource
    import subprocess

    exe = Path(sys.executable).with_name("mlops-workshop")
    stages: dict[str, dict[str, float]] = {}

    def cpu() -> float:
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    with tempfile.TemporaryDirectory(prefix="bench-wos-cli-") as tmp:
        env = {**os.environ, "MLOPS_RUN_ROOT": tmp, "MLOPS_ATTENDEE": "benchcli"}
        try:
            for name in PIPELINE.stage_names():
                start, used = time.perf_counter(), cpu()
                subprocess.run(
                    [str(exe), "watson_openscale", name],
                    env=env,
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
                stages[name] = {"wall_s": time.perf_counter() - start, "cpu_s": cpu() - used}
        finally:
            if "cleanup" not in stages:
                subprocess.run(
                    [str(exe), "watson_openscale", "cleanup"],
                    env=env,
                    capture_output=True,
                    timeout=300,
                    check=False,
                )
    wall = sum(s["wall_s"] for s in stages.values())
    print(f"local stages, one process each: {wall:.1f} s", flush=True)
    return {
        "total_wall_s": wall,
        "total_cpu_s": sum(s["cpu_s"] for s in stages.values()),
        "stages": stages,
    }


def main() -> int:
    results: dict[str, Any] = {
        "model": "StandardScaler + LogisticRegression on digits (64 features, 10 classes)",
        "server": "FastAPI + uvicorn, 1 worker",
        "warmup": WARMUP,
        "requests": REQUESTS,
    }
    with tempfile.TemporaryDirectory(prefix="bench-wos-") as tmp:
        settings = Settings.load(
            "watson_openscale",
            params={"run_root": tmp, "attendee": "bench", "max_rows_per_evaluation": FEEDBACK_ROWS},
            defaults=PIPELINE.defaults,
            env_file=Path(tmp) / "no.env",
        )
        ctx = PIPELINE.context(settings, log=lambda _: None)
        try:
            start = time.perf_counter()
            PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy", "subscribe"])
            results["setup_to_subscribe_s"] = time.perf_counter() - start
            deployment = ctx.state.get("deployment")
            fields = ctx.state.get("setup")["meta"]["feature_fields"]
            from mlops_helpers.watson_openscale.model_source import load_model_module

            module = load_model_module()
            rows = module.load_data(module.load_config()).X_test.tolist()
            results["scoring"] = {
                f"{n}_row": scoring_latency(deployment["scoring_url"], fields, rows, n, count)
                for n, count in REQUESTS.items()
            }
            results["monitor_run"] = monitor_runs(ctx)
            results["fuzz_scoring_endpoint"] = fuzz(ctx)
        finally:
            PIPELINE.run_stage("cleanup", ctx)
    results["ibm_double"] = ibm_double_run()
    results["local_stage_processes"] = local_stage_processes()
    results["notebook"] = notebook_wall_times("watson_openscale", target_s=9)
    # other work on the machine slows every figure: the 1/5/15-minute load when it ended
    results["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    write_result("watson_openscale", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
