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

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from mlops_helpers.config import Settings
from mlops_helpers.errors import GateFailed, WaitTimeout
from mlops_helpers.pipeline import StageContext
from mlops_helpers.sagemaker_byo.stages import PIPELINE
from mlops_helpers.servers import ManagedServer, free_port
from mlops_helpers.waiting import wait_until
from tests.faults.fuzz import Case, fuzz_endpoint
from tests.sagemaker_byo.container_runs import image_python, sagemaker_job, serve
from tests.support import leftover_processes

pytestmark = pytest.mark.faults

EXAMPLE = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
CSV = {"Content-Type": "text/csv"}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlops-workshop")
    return subprocess.run(
        [str(exe), "sagemaker_byo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


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
@dataclass
class GatesUnderAttack:
    """One build whose model and test endpoint are changed under its gates, step by step
    (the fixture does it; each test reads what one step showed)."""

    passed: dict[str, Any] = field(default_factory=dict)
    digests: tuple[str, str] = ("", "")
    retrained_cli_deploy_prod: Any = None
    retrained_smoke_test: str = ""
    retrained_deploy_prod: str = ""
    tampered_deploy_prod: str = ""
    workers: int = 0
    workers_left: list[Any] = field(default_factory=list)
    url_answers_after_kill: bool = True
    killed_smoke_test: str = ""
    killed_cli_deploy_prod: Any = None
    production: Any = "not read"
    leftovers: list[str] = field(default_factory=list)


def _refusal(stage: str, ctx: StageContext) -> str:
    """The gate's message; a stage that does not refuse fails the flow."""
    with pytest.raises(GateFailed) as caught:
        PIPELINE.run_stage(stage, ctx)
    return str(caught.value)


@pytest.fixture(scope="module")
def attacked(module_root: Path) -> Iterator[GatesUnderAttack]:
    def context(**params: object) -> StageContext:  # one run directory for both models
        settings = Settings.load(
            "sagemaker_byo",
            params={"run_root": str(module_root), **params},
            env_file=module_root / "no.env",
        )
        return PIPELINE.context(settings=settings, log=lambda _: None)

    seen = GatesUnderAttack()
    ctx = context(max_depth=4, serve_workers=2)  # the master and its workers, killed below
    try:
        PIPELINE.run(ctx, ["build", "train", "train_status", "deploy_test", "smoke_test"])
        seen.passed = ctx.state.get("smoke_test")
        first = ctx.state.get("model_digest")
        # a new training run replaces the model; the test endpoint still serves the first
        retrained = context(max_depth=2)
        PIPELINE.run(retrained, ["train", "train_status"])
        seen.digests = (first, retrained.state.get("model_digest"))
        # its own process, as in Jenkins (with the settings the model was trained with)
        seen.retrained_cli_deploy_prod = cli("deploy_prod", "-p", "max_depth", "2")
        seen.retrained_smoke_test = _refusal("smoke_test", retrained)
        seen.retrained_deploy_prod = _refusal("deploy_prod", retrained)
        # a recorded pass cannot be pointed at another digest either
        ctx.state.update(smoke_test={**seen.passed, "model_digest": "0" * 64})
        seen.tampered_deploy_prod = _refusal("deploy_prod", retrained)
        # kill -9 of the test endpoint's master: its workers must exit on their own
        record = ctx.state.get("endpoints")["test"]
        master = psutil.Process(record["server"]["pid"])
        workers = master.children(recursive=True)
        seen.workers = len(workers)
        os.kill(master.pid, signal.SIGKILL)
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: [w for w in workers if serving(w)],
                what="orphaned uvicorn workers to exit",
                timeout=15,
                interval=0.05,
                until=lambda alive: not alive,
                describe=lambda alive: f"{len(alive)} alive",
            )
        seen.workers_left = [w.pid for w in workers if serving(w)]
        seen.url_answers_after_kill = answers(record["url"])
        seen.killed_smoke_test = _refusal("smoke_test", retrained)
        seen.killed_cli_deploy_prod = cli("deploy_prod", "-p", "max_depth", "2")
        seen.production = ctx.backend.production()
    finally:
        PIPELINE.run_stage("teardown", ctx)
    seen.leftovers = leftover_processes(str(module_root))
    yield seen


def test_killed_master_leaves_no_worker_serving_and_the_gates_refuse(
    attacked: GatesUnderAttack,
) -> None:
    assert attacked.workers >= 2, "serve runs several uvicorn workers"
    assert attacked.workers_left == [] and not attacked.url_answers_after_kill
    assert re.search("server .* is gone", attacked.killed_smoke_test)
    refused = attacked.killed_cli_deploy_prod
    assert refused.returncode == 1 and "has not passed the smoke test" in refused.stderr
    assert attacked.production is None and attacked.leftovers == []


def test_smoke_test_refuses_an_endpoint_serving_another_model(
    attacked: GatesUnderAttack,
) -> None:
    first, second = attacked.digests
    assert first != second
    # the test endpoint serves the first model, the build now deploys the second
    assert re.search(r"serves model \w{12} .*not the deployed", attacked.retrained_smoke_test)
    assert first[:12] in attacked.retrained_smoke_test
    assert "has not passed the smoke test" in attacked.retrained_deploy_prod


def test_deploy_prod_promotes_only_the_digest_that_passed(attacked: GatesUnderAttack) -> None:
    passed = attacked.passed
    assert passed["passed"] and passed["model_digest"] == attacked.digests[0]
    # the retrained model's digest has no smoke test yet
    refused = attacked.retrained_cli_deploy_prod
    assert refused.returncode == 1 and "has not passed the smoke test" in refused.stderr
    assert "has not passed the smoke test" in attacked.tampered_deploy_prod
    assert attacked.production is None


# -- credentials -------------------------------------------------------------------------------
def _env_without_aws(run_root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_AWS"))}
    empty = run_root / "no-aws-files"
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_CONFIG_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true",
            **extra,
        }
    )
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


def test_aws_without_credentials_never_probes_the_instance_metadata(run_root: Path) -> None:
    """Issue 30: with no credentials set, botocore would ask 169.254.169.254 (here: a
    loopback stand-in with no routes, that logs whatever asks) for an instance role; the aws
    backend turns that probe off."""
    from tests.doubles.http_base import HttpDouble

    with HttpDouble() as probes:
        env = _env_without_aws(run_root, AWS_EC2_METADATA_SERVICE_ENDPOINT=probes.url + "/")
        del env["AWS_EC2_METADATA_DISABLED"]
        done = cli("build", "--backend", "aws", "-p", "aws_region", "eu-west-2", env=env)
        _one_line_error(done, "no AWS credentials found")
        assert probes.log == []


def test_an_unloadable_model_stops_serve_at_once(tmp_path: Path) -> None:
    """Issue 30: uvicorn restarts a worker that cannot import the app for ever, so a broken
    model kept the health wait going for its whole timeout; serve now refuses it itself."""
    from mlops_helpers.errors import ServerStartError
    from mlops_helpers.sagemaker_byo.container import container_dir
    from mlops_helpers.servers import start_server

    python, site_env = image_python(tmp_path / "image")
    model = tmp_path / "opt_ml" / "model"
    model.mkdir(parents=True)
    (model / "model.joblib").write_bytes(b"this is not a model")
    (model / "model-meta.json").write_text("{}")
    serve_program = container_dir() / "program" / "serve"
    argv = [*python, str(serve_program), "--host", "127.0.0.1", "--port", "{port}"]
    with pytest.raises(ServerStartError) as failed:
        start_server(
            "unloadable",
            [*argv, "--workers", "2"],
            run_dir=tmp_path,
            env={"BYO_OPT_ML": str(tmp_path / "opt_ml"), **site_env},
            timeout=60,
            interval=0.05,
        )
    assert "exited with code 3" in str(failed.value), failed.value
    assert "cannot load the model" in str(failed.value)


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
    env = _env_without_aws(
        run_root,
        AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG1",
        AWS_SECRET_ACCESS_KEY="not-the-secret",
        AWS_ENDPOINT_URL=strict_moto,
    )
    done = cli("train", "--backend", "aws", "-p", "aws_region", "eu-west-2", env=env)
    _one_line_error(done, "AWS refused the credentials (InvalidClientTokenId")
    assert "not-the-secret" not in done.stdout + done.stderr
    assert not (run_root / "sagemaker_byo-test" / "data").exists()


def test_aws_with_unreachable_endpoint_is_one_line(run_root: Path) -> None:
    env = _env_without_aws(
        run_root,
        AWS_ACCESS_KEY_ID="AKIAEXAMPLEEXAMPLE01",
        AWS_SECRET_ACCESS_KEY="secret-value",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        AWS_MAX_ATTEMPTS="1",
    )
    done = cli("build", "--backend", "aws", "-p", "aws_region", "eu-west-2", env=env)
    _one_line_error(done, "cannot check credentials at http://127.0.0.1:")


# -- the inference server -------------------------------------------------------------------
@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    """``serve`` (two workers, the default payload limit) of a trained model."""
    root = tmp_path_factory.mktemp("serve")
    image = image_python(root)
    yield from serve("byo-fuzz", sagemaker_job(root / "job", image), image, root / "run")


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
    Case(
        "json: 100k rows", body=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 100_000}).encode()
    ),
    Case("no content type", body=b"5.1,3.5,1.4,0.2", headers={}),
    Case(
        "content-length lies",
        body=b"5.1,3.5,1.4,0.2",
        headers={**CSV, "Content-Length": "99999999"},
    ),
    Case("wrong path", path_suffix="/../nowhere", body=b"5.1,3.5,1.4,0.2", headers=CSV),
]


def test_serve_answers_fuzzing_with_4xx_json_never_5xx(endpoint: ManagedServer) -> None:
    report = fuzz_endpoint(f"{endpoint.url}/invocations", EXAMPLE, extra=SPECIFIC)
    print("fuzz /invocations:", json.dumps(report.as_dict()))
    assert report.n5xx == 0 and not report.bad, report.bad
    assert report.n4xx >= len(SPECIFIC) - 3  # -0.0/1e-320, charset and 100k rows are fine
    assert endpoint.alive()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_ping_refuses_other_methods_with_405_json(endpoint: ManagedServer, method: str) -> None:
    resp = requests.request(method, f"{endpoint.url}/ping", data=b"{}", timeout=10)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, HEAD"
    assert "use GET for /ping" in resp.json()["error"]
    assert requests.head(f"{endpoint.url}/ping", timeout=10).status_code == 200
    assert requests.get(f"{endpoint.url}/ping", timeout=10).json()["status"] == "ok"
