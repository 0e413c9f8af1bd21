"""sagemaker_byo under attack (issue 15): gates that cannot be walked around, credentials
that fail in one line, and an inference server that never answers 5xx.

- ``kill -9`` of the test endpoint's master: its uvicorn workers exit on their own, the
  smoke test refuses, and ``deploy_prod`` (its own process, as in Jenkins) refuses too;
- the smoke test refuses an endpoint that serves another model than the one deployed, and
  ``deploy_prod`` promotes only the digest whose smoke test passed;
- ``--backend aws`` with no credentials, or credentials AWS refuses: one line, no work done;
- the container's ``serve`` under the shared fuzzer plus its own cases: 0 5xx.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from mlops_helpers.errors import GateFailed
from mlops_helpers.pipeline import StageContext
from mlops_helpers.resources import ResourceTracker
from mlops_helpers.sagemaker_byo.container import container_dir
from mlops_helpers.sagemaker_byo.stages import BUILD_STAGES, PIPELINE
from mlops_helpers.servers import ManagedServer, free_port, start_server
from mlops_helpers.waiting import wait_until
from tests.faults.fuzz import Case, fuzz_endpoint
from tests.support import leftover_processes

pytestmark = pytest.mark.faults

EXAMPLE = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
CSV = {"Content-Type": "text/csv"}


def context(make_settings, **params: object) -> StageContext:
    return PIPELINE.context(settings=make_settings("sagemaker_byo", **params),
                            log=lambda _: None)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlops-workshop")
    return subprocess.run([str(exe), "sagemaker_byo", *args], capture_output=True, text=True,
                          timeout=180, check=False, env=env)


def serving(proc: psutil.Process) -> bool:
    """Alive and not a zombie (an exited orphan the container's init has not reaped)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False


# -- gates -----------------------------------------------------------------------------------
def test_killed_master_leaves_no_worker_serving_and_the_gates_refuse(
    make_settings, run_root: Path
) -> None:
    ctx = context(make_settings)
    try:
        PIPELINE.run(ctx, ["build", "train", "train_status", "deploy_test"])
        record = ctx.state.get("endpoints")["test"]
        master = psutil.Process(record["server"]["pid"])
        workers = master.children(recursive=True)
        assert len(workers) >= 2, "serve runs several uvicorn workers"
        os.kill(master.pid, signal.SIGKILL)
        # the workers notice their master is gone and exit: nothing serves the port
        wait_until(lambda: [w for w in workers if serving(w)],
                   what="orphaned uvicorn workers to exit", timeout=15, interval=0.1,
                   until=lambda alive: not alive, describe=lambda alive: f"{len(alive)} alive")
        assert not answers(record["url"])
        with pytest.raises(GateFailed, match="server .* is gone"):
            PIPELINE.run_stage("smoke_test", ctx)
        refused = cli("deploy_prod")  # its own process, as a Jenkins sh step
        assert refused.returncode == 1 and "has not passed the smoke test" in refused.stderr
        assert ctx.backend.production() is None
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert leftover_processes(str(run_root)) == []


def test_smoke_test_refuses_an_endpoint_serving_another_model(
    make_settings, run_root: Path
) -> None:
    first = context(make_settings, max_depth=4)
    try:
        PIPELINE.run(first, BUILD_STAGES)
        prod = first.backend.production()
        second = context(make_settings, max_depth=2)  # another model, also good enough
        PIPELINE.run(second, ["train", "train_status", "deploy_test"])
        assert second.state.get("model_digest") != prod["model_digest"]
        # the test endpoint's address now leads to production's server (old model)
        endpoints = second.state.get("endpoints")
        endpoints["test"] = {**endpoints["test"], "url": prod["url"], "server": prod["server"]}
        second.state.update(endpoints=endpoints)
        with pytest.raises(GateFailed, match=r"serves model \w{12} .*not the deployed"):
            PIPELINE.run_stage("smoke_test", second)
        with pytest.raises(GateFailed, match="has not passed the smoke test"):
            PIPELINE.run_stage("deploy_prod", second)
        assert second.backend.production() == prod
    finally:
        PIPELINE.run_stage("teardown", first)
    assert leftover_processes(str(run_root)) == []


def test_deploy_prod_promotes_only_the_digest_that_passed(make_settings, run_root: Path) -> None:
    ctx = context(make_settings, max_depth=4)
    try:
        PIPELINE.run(ctx, ["build", "train", "train_status", "deploy_test", "smoke_test"])
        passed = ctx.state.get("smoke_test")
        assert passed["passed"] and passed["model_digest"] == ctx.state.get("model_digest")
        # a new training run replaces the model: its digest has no smoke test yet
        retrained = context(make_settings, max_depth=2)
        PIPELINE.run(retrained, ["train", "train_status"])
        refused = cli("deploy_prod")
        assert refused.returncode == 1 and "has not passed the smoke test" in refused.stderr
        # a recorded pass cannot be pointed at another digest either
        ctx.state.update(smoke_test={**passed, "model_digest": "0" * 64})
        with pytest.raises(GateFailed, match="has not passed the smoke test"):
            PIPELINE.run_stage("deploy_prod", ctx)
        assert ctx.backend.production() is None
    finally:
        PIPELINE.run_stage("teardown", ctx)
    assert leftover_processes(str(run_root)) == []


# -- credentials -------------------------------------------------------------------------------
def _env_without_aws(run_root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_AWS"))}
    empty = run_root / "no-aws-files"
    env.update({"AWS_SHARED_CREDENTIALS_FILE": str(empty), "AWS_CONFIG_FILE": str(empty),
                "AWS_EC2_METADATA_DISABLED": "true", **extra})
    return env


def _one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: aws backend:"), done.stderr
    assert text in lines[0]
    assert "Traceback" not in done.stderr and "botocore" not in done.stderr


def test_aws_without_credentials_is_one_line_before_any_work(run_root: Path) -> None:
    env = _env_without_aws(run_root)
    for stage in ("build", "train", "cleanup", "teardown"):
        done = cli(stage, "--backend", "aws", "-p", "aws_region", "eu-west-2", env=env)
        _one_line_error(done, "no AWS credentials found")
    run_dir = run_root / "sagemaker_byo-test"
    assert not (run_dir / "data").exists() and not (run_dir / "images").exists()


@pytest.fixture
def strict_moto() -> Iterator[str]:
    """moto's server on loopback that checks every request's credentials."""
    from moto import settings as moto_settings
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    before = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        server.stop()


def test_aws_with_refused_credentials_is_one_line(run_root: Path, strict_moto: str) -> None:
    env = _env_without_aws(run_root, AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG1",
                           AWS_SECRET_ACCESS_KEY="not-the-secret", AWS_ENDPOINT_URL=strict_moto)
    done = cli("train", "--backend", "aws", "-p", "aws_region", "eu-west-2", env=env)
    _one_line_error(done, "AWS refused the credentials (InvalidClientTokenId")
    assert "not-the-secret" not in done.stdout + done.stderr
    assert not (run_root / "sagemaker_byo-test" / "data").exists()


def test_aws_with_unreachable_endpoint_is_one_line(run_root: Path) -> None:
    env = _env_without_aws(run_root, AWS_ACCESS_KEY_ID="AKIAEXAMPLEEXAMPLE01",
                           AWS_SECRET_ACCESS_KEY="secret-value",
                           AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
                           AWS_MAX_ATTEMPTS="1")
    done = cli("build", "--backend", "aws", "-p", "aws_region", "eu-west-2", env=env)
    _one_line_error(done, "cannot check credentials at http://127.0.0.1:")


# -- the inference server -------------------------------------------------------------------
@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    from tests.sagemaker_byo.test_container import iris_rows, make_tree, run_train

    base = make_tree(tmp_path_factory.mktemp("opt_ml"), {"max_depth": "4"}, iris_rows())
    assert run_train(base).returncode == 0
    run_dir = tmp_path_factory.mktemp("run")
    tracker = ResourceTracker(run_dir)
    server = start_server("byo-fuzz", [sys.executable, str(container_dir() / "program" / "serve"),
                                       "--host", "127.0.0.1", "--port", "{port}", "--workers",
                                       "2"],
                          run_dir=run_dir, tracker=tracker, health_path="/ping",
                          env={"BYO_OPT_ML": str(base)})
    yield server
    tracker.cleanup(log=lambda _: None)
    assert leftover_processes(str(base)) == []


def _csv(name: str, body: bytes, **headers: str) -> Case:
    return Case(f"csv: {name}", body=body, headers={**CSV, **headers})


SPECIFIC = [
    _csv("1_0", b"1_0,3.5,1.4,0.2"),
    _csv("400-digit integer", b"9" * 400 + b",3.5,1.4,0.2"),
    _csv("1e308", b"1e308,3.5,1.4,0.2"),
    _csv("-1e39 (beyond float32)", b"-1e39,3.5,1.4,0.2"),
    _csv("nan", b"nan,3.5,1.4,0.2"),
    _csv("inf", b"inf,3.5,1.4,0.2"),
    _csv("Infinity", b"Infinity,3.5,1.4,0.2"),
    _csv("hex float", b"0x1p3,3.5,1.4,0.2"),
    _csv("empty cell", b"5.1,,1.4,0.2"),
    _csv("too few columns", b"5.1,3.5"),
    _csv("1000 columns", b",".join([b"1"] * 1000)),
    _csv("semicolons", b"5.1;3.5;1.4;0.2"),
    _csv("quoted cells", b'"5.1","3.5","1.4","0.2"'),
    _csv("NUL bytes", b"5.1,3.5\x00,1.4,0.2"),
    _csv("header row", b"a,b,c,d\n5.1,3.5,1.4,0.2"),
    _csv("only blank lines", b"\n\n  \n"),
    _csv("invalid utf-8", b"\xff\xfe5.1,3.5,1.4,0.2"),
    _csv("accept xml", b"5.1,3.5,1.4,0.2", Accept="application/xml"),
    _csv("charset", b"5.1,3.5,1.4,0.2", **{"Content-Type": "text/csv; charset=utf-8"}),
    _csv("over 6 MB", b"5.1,3.5,1.4,0.2\n" * 400_000),
    Case("json: row of rows of rows", body=b'{"instances": [[[5.1, 3.5, 1.4, 0.2]]]}'),
    Case("json: bools", body=b'{"instances": [[true, false, true, false]]}'),
    Case("json: mixed rows", body=b'{"instances": [[5.1, 3.5, 1.4, 0.2], 7]}'),
    Case("json: -0.0 and 1e-320", body=b'{"instances": [[-0.0, 1e-320, 1.4, 0.2]]}'),
    Case("json: instances null", body=b'{"instances": null}'),
    Case("json: 100k rows", body=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 100_000})
         .encode()),
    Case("no content type", body=b"5.1,3.5,1.4,0.2", headers={}),
    Case("content-length lies", body=b"5.1,3.5,1.4,0.2",
         headers={**CSV, "Content-Length": "99999999"}),
    Case("wrong path", path_suffix="/../nowhere", body=b"5.1,3.5,1.4,0.2", headers=CSV),
]


def test_serve_answers_fuzzing_with_4xx_json_never_5xx(serve: ManagedServer) -> None:
    report = fuzz_endpoint(f"{serve.url}/invocations", EXAMPLE, extra=SPECIFIC)
    print("fuzz /invocations:", json.dumps(report.as_dict()))
    assert report.n5xx == 0 and not report.bad, report.bad
    assert report.n4xx >= len(SPECIFIC) - 3  # -0.0/1e-320, charset and 100k rows are fine
    assert serve.alive()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_ping_refuses_other_methods_with_405_json(serve: ManagedServer, method: str) -> None:
    resp = requests.request(method, f"{serve.url}/ping", data=b"{}", timeout=10)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, HEAD"
    assert "use GET for /ping" in resp.json()["error"]
    assert requests.head(f"{serve.url}/ping", timeout=10).status_code == 200
    assert requests.get(f"{serve.url}/ping", timeout=10).json()["status"] == "ok"
