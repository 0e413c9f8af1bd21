"""The Seldon runtime environment: created once, reused, and really serves a model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_helpers.resources import ResourceTracker
from mlops_helpers.seldon_kind.runtime import ensure_seldon_runtime, runtime_dir
from mlops_helpers.seldon_kind.serving import microservice_argv
from mlops_helpers.servers import http_json, start_server
from mlops_helpers.waiting import wait_until
from tests.support import listening_sockets, not_loopback

MODEL = """
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


class IrisModel:
    def __init__(self):
        data = load_iris()
        self.model = LogisticRegression(max_iter=500).fit(data.data, data.target)

    def predict(self, X, features_names=None):
        return self.model.predict_proba(np.asarray(X, dtype=float))
"""


@pytest.fixture(scope="module")
def seldon_python() -> Path:
    return ensure_seldon_runtime()


def test_runtime_is_reused_without_reinstalling(seldon_python: Path) -> None:
    stamp = runtime_dir() / ".requirements.sha256"
    before = stamp.stat().st_mtime_ns
    assert ensure_seldon_runtime() == seldon_python
    assert stamp.stat().st_mtime_ns == before


def test_runtime_has_seldon_with_its_own_pins(seldon_python: Path) -> None:
    code = "import seldon_core, numpy; print(numpy.__version__)"
    done = subprocess.run(
        [str(seldon_python), "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("1."), "seldon-core needs numpy<2"


def test_microservice_serves_predictions_and_refuses_bad_input(
    seldon_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "IrisModel.py").write_text(MODEL)
    tracker = ResourceTracker(tmp_path)
    server = start_server(
        "iris-seldon",
        microservice_argv(seldon_python, "IrisModel"),
        run_dir=tmp_path,
        tracker=tracker,
        cwd=tmp_path,
        health_path="/health/ping",
        timeout=120,
        interval=0.05,
    )
    try:
        # REST answers first; gRPC and metrics may open a moment after it
        sockets = wait_until(
            lambda: listening_sockets([server.pid]),
            what="seldon's REST, gRPC and metrics ports",
            timeout=60,
            interval=0.05,
            until=lambda found: len({port for _pid, _ip, port in found}) >= 3,
            progress=False,
        )
        assert len({port for _pid, _ip, port in sockets}) == 3, sockets  # REST, gRPC, metrics
        assert not_loopback(sockets) == [], "seldon binds 0.0.0.0; the launcher must not"
        url = f"{server.url}/api/v1.0/predictions"
        status, body = http_json("POST", url, {"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}})
        assert status == 200, body
        probabilities = body["data"]["ndarray"][0]
        assert len(probabilities) == 3 and probabilities[0] > 0.5
        status, body = http_json("POST", url, {"nodata": 1})
        assert 400 <= status < 500, body
        status, _ = http_json("POST", url, {"data": {"ndarray": [[1.0, 2.0, 3.0, 4.0]]}})
        assert status == 200, "the server keeps serving after a bad request"
    finally:
        tracker.cleanup(log=lambda _m: None)
    assert not server.alive()
