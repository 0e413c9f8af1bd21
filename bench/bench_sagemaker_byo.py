"""Benchmark of the sagemaker_byo scenario.

1. ``/invocations`` of the container's ``serve`` (uvicorn + bare ASGI app): latency p50/p99
   and throughput for 1-row and 100-row text/csv bodies;
2. in the same run, seldon-core's Python microservice serving the same model (the same
   decision tree, fitted on the same rows with the same hyperparameters in the Seldon
   runtime environment of the seldon_kind scenario), with the same rows as JSON ndarray;
3. the notebook's median wall time over 3 papermill runs.

Load: http.client keep-alive connections on loopback, fixed request counts (bounded).
Run: .venv/bin/python bench/bench_sagemaker_byo.py  ->  bench/results/sagemaker_byo.json
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import notebook_wall_times, summary, write_result  # noqa: E402

from mlops_helpers.data import load_dataset  # noqa: E402
from mlops_helpers.resources import ResourceTracker  # noqa: E402
from mlops_helpers.sagemaker_byo import image_site  # noqa: E402
from mlops_helpers.sagemaker_byo.container import container_dir  # noqa: E402
from mlops_helpers.servers import ManagedServer, free_port, start_server  # noqa: E402

MAX_DEPTH = 4
WORKERS = 2
WARMUP = 200
REQUESTS = {1: 3000, 100: 1000}  # sequential requests per body size
CONCURRENCY = 4  # client threads (one keep-alive connection each)
PARALLEL_REQUESTS = {1: 4000, 100: 1200}
SELDON_MODEL = '''
import numpy as np
from sklearn.tree import DecisionTreeClassifier


class ByoTree:
    """The container's model, fitted on the same CSV with the same hyperparameters."""

    def __init__(self):
        data = np.loadtxt("{train}", delimiter=",", ndmin=2)
        self.model = DecisionTreeClassifier(max_depth={depth}, random_state=0).fit(
            data[:, 1:], data[:, 0].astype(int))

    def predict(self, X, features_names=None):
        return self.model.predict(np.asarray(X, dtype=float))
'''


class Target:
    """One server and how to send it n rows."""

    def __init__(
        self,
        name: str,
        server: ManagedServer,
        path: str,
        content_type: str,
        body: Callable[[list[list[float]]], bytes],
    ) -> None:
        self.name, self.server, self.path = name, server, path
        self.content_type, self.body = content_type, body

    def request(self, conn: http.client.HTTPConnection, payload: bytes) -> bytes:
        conn.request("POST", self.path, body=payload, headers={"Content-Type": self.content_type})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{self.name} answered {resp.status}: {data[:200]!r}")
        return data

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)


def csv_body(rows: list[list[float]]) -> bytes:
    return ("\n".join(",".join(repr(v) for v in row) for row in rows) + "\n").encode()


def seldon_body(rows: list[list[float]]) -> bytes:
    return json.dumps({"data": {"ndarray": rows}}).encode()


def sequential(target: Target, rows: list[list[float]], count: int) -> dict[str, Any]:
    payload = target.body(rows)
    conn = target.connect()
    for _ in range(WARMUP):
        target.request(conn, payload)
    samples = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        target.request(conn, payload)
        samples.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    stats = {k: v * 1000 if k != "n" else v for k, v in summary(samples).items()}
    return {"latency_ms": stats, "throughput_rps": count / elapsed}


def parallel(target: Target, rows: list[list[float]], count: int) -> float:
    """Requests per second with CONCURRENCY keep-alive connections, count requests in all."""
    payload = target.body(rows)
    per_thread = count // CONCURRENCY
    errors: list[BaseException] = []

    def work() -> None:
        conn = target.connect()
        try:
            for _ in range(per_thread):
                target.request(conn, payload)
        except BaseException as exc:  # reported after join
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work) for _ in range(CONCURRENCY)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return per_thread * CONCURRENCY / elapsed


def measure(target: Target, rows: list[list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, count in REQUESTS.items():
        part = (rows * (n // len(rows) + 1))[:n]
        result = sequential(target, part, count)
        result["throughput_rps_concurrent"] = parallel(target, part, PARALLEL_REQUESTS[n])
        out[f"{n}_row"] = result
        print(
            f"{target.name} {n} row(s): p50 {result['latency_ms']['p50']:.3f} ms, "
            f"p99 {result['latency_ms']['p99']:.3f} ms, "
            f"{result['throughput_rps']:.0f} rps sequential, "
            f"{result['throughput_rps_concurrent']:.0f} rps x{CONCURRENCY}",
            flush=True,
        )
    return out


Image = tuple[list[str], dict[str, str]]  # how the image's programs run here (image_site)


def train_model(base: Path, train_csv: Path, image: Image) -> None:
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "data" / "training").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"max_depth": str(MAX_DEPTH)})
    )
    (base / "input" / "data" / "training" / "train.csv").write_bytes(train_csv.read_bytes())
    python, site_env = image
    subprocess.run(
        [*python, str(container_dir() / "program" / "train")],
        env={"BYO_OPT_ML": str(base), "PATH": "/usr/bin:/bin", **site_env},
        check=True,
        timeout=120,
        capture_output=True,
    )


def start_byo(run_dir: Path, tracker: ResourceTracker, opt_ml: Path, image: Image) -> Target:
    python, site_env = image
    server = start_server(
        "bench-byo",
        [
            *python,
            str(container_dir() / "program" / "serve"),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            str(WORKERS),
        ],
        run_dir=run_dir,
        tracker=tracker,
        health_path="/ping",
        env={"BYO_OPT_ML": str(opt_ml), **site_env},
    )
    return Target("byo", server, "/invocations", "text/csv", csv_body)


def start_seldon(run_dir: Path, tracker: ResourceTracker, train_csv: Path) -> Target:
    from mlops_helpers.seldon_kind.runtime import ensure_seldon_runtime

    python = Path(ensure_seldon_runtime())
    model_dir = run_dir / "seldon_model"
    model_dir.mkdir()
    (model_dir / "ByoTree.py").write_text(
        SELDON_MODEL.replace("{train}", str(train_csv)).replace("{depth}", str(MAX_DEPTH))
    )
    server = start_server(
        "bench-seldon",
        [
            str(python),
            "-m",
            "seldon_core.microservice",
            "ByoTree",
            "--service-type",
            "MODEL",
            "--http-port",
            "{port}",
            "--grpc-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--workers",
            str(WORKERS),
        ],
        run_dir=run_dir,
        tracker=tracker,
        health_path="/health/ping",
        cwd=model_dir,
        env={"GUNICORN_WORKERS": str(WORKERS), "PYTHONPATH": str(model_dir)},
        timeout=120,
    )
    return Target("seldon", server, "/api/v1.0/predictions", "application/json", seldon_body)


def main() -> int:
    data = load_dataset("iris")
    rows = data.X_test.tolist()
    results: dict[str, Any] = {
        "model": f"DecisionTreeClassifier(max_depth={MAX_DEPTH}) on iris",
        "server_workers": WORKERS,
        "concurrency": CONCURRENCY,
        "requests": REQUESTS,
        "warmup": WARMUP,
    }
    with tempfile.TemporaryDirectory(prefix="bench-byo-") as tmp:
        run_dir = Path(tmp)
        tracker = ResourceTracker(run_dir)
        train_csv = run_dir / "train.csv"
        import numpy as np

        np.savetxt(
            train_csv, np.column_stack([data.y_train, data.X_train]), delimiter=",", fmt="%.10g"
        )
        image = image_site.python(
            image_site.link_site(
                container_dir() / "requirements.txt", run_dir / image_site.SITE_DIR
            )
        )
        train_model(run_dir / "opt_ml", train_csv, image)
        try:
            byo = start_byo(run_dir, tracker, run_dir / "opt_ml", image)
            results["byo"] = measure(byo, rows)
            try:
                seldon = start_seldon(run_dir, tracker, train_csv)
            except (ImportError, AttributeError) as exc:
                results["seldon"] = {"unavailable": f"{type(exc).__name__}: {exc}"}
                print(f"seldon runtime not available: {exc}", flush=True)
            else:
                # same model: both servers must give the same labels for the held-out rows
                conn = byo.connect()
                ours = byo.request(conn, csv_body(rows)).decode().split()
                conn.close()
                conn = seldon.connect()
                theirs = json.loads(seldon.request(conn, seldon_body(rows)))["data"]["ndarray"]
                conn.close()
                assert [int(float(v)) for v in ours] == [int(v) for v in theirs], "models differ"
                results["seldon"] = measure(seldon, rows)
        finally:
            tracker.cleanup(log=lambda _: None)

    byo_res, seldon_res = results["byo"], results.get("seldon", {})
    results["targets"] = {
        "p50_1_row_ms": byo_res["1_row"]["latency_ms"]["p50"],
        "p50_1_row_at_most_1ms": byo_res["1_row"]["latency_ms"]["p50"] <= 1.0,
    }
    if "1_row" in seldon_res:
        for n in ("1_row", "100_row"):
            for key in ("throughput_rps", "throughput_rps_concurrent"):
                ratio = byo_res[n][key] / seldon_res[n][key]
                results["targets"][f"{key}_ratio_byo_over_seldon_{n}"] = ratio
        results["targets"]["p50_ratio_seldon_over_byo_1_row"] = (
            seldon_res["1_row"]["latency_ms"]["p50"] / byo_res["1_row"]["latency_ms"]["p50"]
        )
    results["notebook"] = notebook_wall_times("sagemaker_byo", target_s=30)
    write_result("sagemaker_byo", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
