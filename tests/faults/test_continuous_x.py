"""continuous_x under faults (issue 15): gates that cannot be walked around, reruns that do
not double-count, endpoints that never answer 5xx, and one-line errors when MLflow is down.

One local platform serves this file and the lifecycle tests (``tests/fixtures/
continuous_x.py``); stages run one per ``mlops-workshop`` process where the bypass was one
(as Jenkins runs them). Each test names the state it needs (a fixture). The two that kill
MLflow and a service run after every other test of the platform (``last_in_group``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.continuous_x.stages import PIPELINE, serving
from mlops_helpers.continuous_x.traffic import drive
from mlops_helpers.pipeline import StageContext
from mlops_helpers.resources import process_alive
from mlops_helpers.servers import ManagedServer, http_json
from tests.faults.fuzz import Case, fuzz_endpoint
from tests.fixtures.continuous_x import GROUP, cli_env, fresh_environments, make

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group(GROUP)]


CLI = Path(sys.executable).parent / "mlops-workshop"
MODEL = "continuous-x-model-test"
ROW = [5.1, 3.5, 1.4, 0.2]


def cli(ctx: StageContext, stage: str, **params: object) -> subprocess.CompletedProcess[str]:
    """One stage in its own ``mlops-workshop`` process, on ``ctx``'s run."""
    argv = [str(CLI), "continuous_x", stage]
    for key, value in params.items():
        argv += ["-p", key, str(value)]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(Path(ctx.settings.get("run_root"))),
    )


@pytest.fixture(scope="module")
def ctx(shared_platform: StageContext) -> StageContext:
    return fresh_environments(shared_platform)


def versions(ctx: StageContext) -> list[str]:
    return ctx.backend.mlflow().versions(MODEL)


# -- gates ---------------------------------------------------------------------------------
def test_the_threshold_is_read_when_the_gate_runs(ctx: StageContext) -> None:
    assert cli(ctx, "train").returncode == 0
    before = versions(ctx)
    done = cli(ctx, "evaluate", min_accuracy=0.999)
    assert done.returncode == 1, done.stdout
    assert "gate failed" in done.stderr and "below the threshold 0.999" in done.stderr
    assert versions(ctx) == before
    for bad in (-5, 1.5):
        done = cli(ctx, "evaluate", min_accuracy=bad)
        assert done.returncode == 1 and "min_accuracy" in done.stderr
        assert "[0, 1]" in done.stderr or "between 0 and 1" in done.stderr
    assert versions(ctx) == before
    assert cli(ctx, "evaluate").returncode == 0  # the default 0.9 passes the same run


def test_an_identical_run_registers_no_new_version(ctx: StageContext, shared_root: Path) -> None:
    first = make(shared_root, C=3.0)
    for stage in ("train", "evaluate"):
        PIPELINE.run_stage(stage, first)
    version = ctx.state.get("candidate_version")
    before = versions(ctx)
    for stage in ("train", "evaluate"):
        answer = PIPELINE.run_stage(stage, make(shared_root, C=3.0))
    assert answer["identical_to"] == version and answer["new_model_version"] == version
    assert versions(ctx) == before


# -- issue 30: the threshold, the verdict and the path are the pipeline's ------------------
POOR: dict[str, str] = {}  # the run of a model no gate may pass, shared by the next tests


def _aliases(ctx: StageContext) -> dict[str, str | None]:
    mlflow = ctx.backend.mlflow()
    return {env: mlflow.alias(MODEL, env) for env in ("staging", "canary", "production")}


def test_the_evaluation_service_takes_no_threshold_from_a_request(
    ctx: StageContext, shared_root: Path
) -> None:
    poor = make(shared_root, C=1e-6)  # predicts one class: accuracy about a third
    PIPELINE.run_stage("train", poor)
    POOR["run_id"] = run_id = str(poor.state.get("run_id"))
    before = versions(ctx)
    url = f"{ctx.backend.urls()['evaluation']}/evaluate"
    status, body = http_json("POST", url, {"run_id": run_id, "min_accuracy": 0}, timeout=120)
    assert 400 <= status < 500 and "min_accuracy" in body["error"], (status, body)
    status, body = http_json("POST", url, {"run_id": run_id}, timeout=120)
    assert status == 200 and not body["passed"] and body["new_model_version"] is None, body
    assert body["accuracy"] < 0.5 <= body["threshold"]
    assert versions(ctx) == before
    done = cli(ctx, "evaluate")
    assert done.returncode == 1 and "is below the threshold" in done.stderr, done.stderr
    assert versions(ctx) == before


@pytest.fixture
def poor_run(ctx: StageContext, shared_root: Path) -> str:
    """The poor model's run (the test before trains it; alone, this trains it)."""
    if "run_id" not in POOR:
        poor = make(shared_root, C=1e-6)
        PIPELINE.run_stage("train", poor)
        POOR["run_id"] = str(poor.state.get("run_id"))
    return POOR["run_id"]


@pytest.fixture
def candidate(nothing_served: StageContext, shared_root: Path) -> str:
    """No environment serving (so no canary gate to meet yet) and a version that passed
    evaluation as the pipeline's candidate (a test before may have left another one, its
    bundle broken on purpose)."""
    ctx = nothing_served
    for stage in ("train", "evaluate"):
        PIPELINE.run_stage(stage, make(shared_root, C=3.0))
    return str(ctx.state.get("candidate_version"))


@pytest.mark.usefixtures("poor_run")
def test_a_version_registered_around_the_gate_never_moves(ctx: StageContext) -> None:
    """Someone registers the poor model in MLflow directly: no stage deploys or promotes
    it, because no evaluation of this pipeline passed it."""
    mlflow_url = ctx.backend.urls()["mlflow"]
    _, run = http_json("GET", f"{mlflow_url}/api/2.0/mlflow/runs/get?run_id={POOR['run_id']}")
    tags = {t["key"]: t["value"] for t in run["run"]["data"]["tags"]}
    # the registered model too, when no evaluation has made it yet (this test ran first)
    status, body = http_json(
        "POST", f"{mlflow_url}/api/2.0/mlflow/registered-models/create", {"name": MODEL}
    )
    assert status == 200 or body.get("error_code") == "RESOURCE_ALREADY_EXISTS", body
    status, body = http_json(
        "POST",
        f"{mlflow_url}/api/2.0/mlflow/model-versions/create",
        {
            "name": MODEL,
            "source": tags["model_uri"],
            "run_id": POOR["run_id"],
            "model_id": tags["model_uri"].removeprefix("models:/"),
        },
    )
    assert status == 200, body
    sneaked = str(body["model_version"]["version"])
    before, aliases = serving(ctx), _aliases(ctx)
    for stage in ("deploy_staging", "promote_canary", "promote_production"):
        done = cli(ctx, stage, version=sneaked)
        assert done.returncode == 1, (stage, done.stdout, done.stderr)
        assert f"version {sneaked}: no evaluation passed it" in done.stderr, done.stderr
    assert serving(ctx) == before and _aliases(ctx) == aliases


@pytest.mark.usefixtures("nothing_served")
def test_versions_move_only_along_the_promotion_path(ctx: StageContext, shared_root: Path) -> None:
    """A version that passed evaluation still goes staging -> canary -> production: never
    to production while canary does not serve it (here no app serves canary or production)."""
    good = make(shared_root, C=3.0)  # identical to an earlier run: its version passed
    for stage in ("train", "evaluate"):
        PIPELINE.run_stage(stage, good)
    version = str(ctx.state.get("candidate_version"))
    assert ctx.state.get("evaluations")[version]["passed"]
    before = serving(ctx)
    assert before["canary"] is None and before["production"] is None
    for stage, source in (("promote_production", "canary"), ("promote_canary", "staging")):
        done = cli(ctx, stage, version=version)
        assert done.returncode == 1, (stage, done.stdout)
        # what the source serves depends on the shared platform's earlier tests (its registry
        # alias): the refusal names the rule, the source and the version either way
        assert "versions move only along staging -> canary -> production" in done.stderr
        assert f"{source} serves" in done.stderr and f"not version {version}" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert serving(ctx) == before


@pytest.mark.usefixtures("candidate")
def test_repeated_promotion_and_a_revert_to_the_same_version(
    ctx: StageContext, shared_root: Path
) -> None:
    for stage in ("build", "deploy_staging", "promote_canary", "promote_production"):
        PIPELINE.run_stage(stage, ctx)
    current = serving(ctx)["production"]
    history = list(ctx.state.get("history")["production"])
    PIPELINE.run_stage("promote_production", ctx)
    PIPELINE.run_stage("promote_production", make(shared_root, version=current))
    assert ctx.state.get("history")["production"] == history  # no duplicate entries
    reverted = PIPELINE.run_stage("revert", ctx)
    assert not (reverted["reverted"] and reverted["model_version"] == current)
    if reverted["reverted"]:
        assert reverted["from_version"] != reverted["model_version"]


@pytest.mark.usefixtures("served_everywhere")
def test_a_failed_deploy_leaves_the_environment_as_it_was(
    ctx: StageContext, shared_root: Path
) -> None:
    """Blue-green: with the new version's model corrupted, deploy_staging fails fast (the
    app exits; no 60 s health wait), staging still serves the old app, no alias moved, and
    promote_canary then promotes what staging really serves."""
    before, aliases = serving(ctx), _aliases(ctx)
    old = ManagedServer.from_dict(ctx.state.get("deployments")["staging"]["server"])
    candidate = make(shared_root, C=0.7)
    for stage in ("train", "evaluate", "build"):
        PIPELINE.run_stage(stage, candidate)
    new = str(ctx.state.get("candidate_version"))
    assert new != before["staging"]
    bundle = Path(ctx.state.get("builds")[new]["path"])
    next(bundle.rglob("model.pkl")).write_bytes(b"this is not a pickle")
    done = cli(ctx, "deploy_staging")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "did not become healthy" in done.stderr and "exited" in done.stderr, done.stderr
    assert serving(ctx) == before and _aliases(ctx) == aliases
    assert process_alive(old.pid, old.start_time)
    done = cli(ctx, "promote_canary")
    assert done.returncode == 0, done.stderr
    assert serving(ctx) == before and _aliases(ctx) == aliases
    apps = [r for r in ctx.tracker.list() if r.name == "app-staging"]
    assert [r.params["pid"] for r in apps] == [old.pid]  # the failed app is not left behind


# -- endpoints -------------------------------------------------------------------------------
TRAIN_CASES = [
    Case("C is text", body=json.dumps({"params": {"C": "abc"}}).encode()),
    Case("C negative", body=json.dumps({"params": {"C": -1}}).encode()),
    Case("C zero", body=json.dumps({"params": {"C": 0}}).encode()),
    Case("C NaN", body=b'{"params": {"C": NaN}}'),
    Case("C Infinity", body=b'{"params": {"C": Infinity}}'),
    Case("C nan text", body=json.dumps({"params": {"C": "nan"}}).encode()),
    Case("max_iter huge", body=json.dumps({"params": {"max_iter": 10**9}}).encode()),
    Case("max_iter fraction", body=json.dumps({"params": {"max_iter": 1.5}}).encode()),
    Case("unknown knob", body=json.dumps({"params": {"gamma": 1}}).encode()),
    Case(
        "forest knob on a linear model", body=json.dumps({"params": {"n_estimators": 10}}).encode()
    ),
    Case("10,000 keys", body=json.dumps({"params": {f"k{i}": i for i in range(10_000)}}).encode()),
    Case(
        "forest with 0 trees",
        body=json.dumps({"model_type": "random_forest", "params": {"n_estimators": 0}}).encode(),
    ),
    Case("unknown model", body=json.dumps({"model_type": "svm"}).encode()),
    Case("unknown dataset", body=json.dumps({"dataset": "mnist"}).encode()),
]
PREDICT_CASES = [
    Case("NaN feature", body=b'{"instances": [[NaN, 3.5, 1.4, 0.2]]}'),
    Case("Infinity feature", body=b'{"instances": [[Infinity, 3.5, 1.4, 0.2]]}'),
    Case("nan text feature", body=json.dumps({"instances": [["nan", 3.5, 1.4, 0.2]]}).encode()),
    Case("inf text feature", body=json.dumps({"instances": [["inf", 3.5, 1.4, 0.2]]}).encode()),
    Case(
        "400-digit feature", body=('{"instances": [[' + "9" * 400 + ", 3.5, 1.4, 0.2]]}").encode()
    ),
    Case("three features", body=json.dumps({"instances": [[5.1, 3.5, 1.4]]}).encode()),
    Case("boolean feature", body=json.dumps({"instances": [[True, 3.5, 1.4, 0.2]]}).encode()),
    Case(
        "numeric string feature", body=json.dumps({"instances": [["5.1", 3.5, 1.4, 0.2]]}).encode()
    ),
    Case("1001 rows", body=json.dumps({"instances": [ROW] * 1001}).encode()),
    Case("a row of 20,000 features", body=json.dumps({"instances": [[1.0] * 20_000]}).encode()),
]
MUST_REFUSE = {
    "C is text",
    "C negative",
    "C zero",
    "C NaN",
    "C Infinity",
    "C nan text",
    "max_iter huge",
    "max_iter fraction",
    "unknown knob",
    "forest knob on a linear model",
    "10,000 keys",
    "forest with 0 trees",
    "NaN feature",
    "Infinity feature",
    "nan text feature",
    "inf text feature",
    "400-digit feature",
    "boolean feature",
    "numeric string feature",
}


def _refused(url: str, cases: list[Case]) -> dict[str, int]:
    """Each must-refuse case's status: every one must be a 4xx with a JSON message."""
    statuses = {}
    for case in cases:
        if case.name in MUST_REFUSE:
            status, body = http_json("POST", url, raw=case.body, headers=case.headers)
            assert isinstance(body, dict) and body.get("error"), (case.name, status, body)
            statuses[case.name] = status
    return statuses


def _endpoints(ctx: StageContext) -> dict[str, tuple[str, Any, list[Case]]]:
    urls = ctx.backend.urls()
    staging = ctx.state.get("deployments")["staging"]["url"]
    router = ctx.state.get("router")["url"]
    predict = {"instances": [ROW]}
    return {
        "training /train": (f"{urls['training']}/train", {"params": {"C": 1.0}}, TRAIN_CASES),
        "evaluation /evaluate": (
            f"{urls['evaluation']}/evaluate",
            {"run_id": ctx.state.get("run_id")},
            [],
        ),
        "app /predict": (f"{staging}/predict", predict, PREDICT_CASES),
        "router /predict": (f"{router}/predict", predict, PREDICT_CASES),
    }


@pytest.mark.usefixtures("served_everywhere")
@pytest.mark.parametrize(
    "endpoint", ["training /train", "evaluation /evaluate", "app /predict", "router /predict"]
)
def test_endpoints_never_answer_5xx(ctx: StageContext, endpoint: str) -> None:
    url, example, extra = _endpoints(ctx)[endpoint]
    report = fuzz_endpoint(url, example, extra=extra, timeout=60)
    print(f"fuzz {endpoint}: {report.as_dict()}")
    assert report.n5xx == 0 and not report.bad, report.bad
    statuses = _refused(url, extra)
    assert all(400 <= s < 500 for s in statuses.values()), statuses


@pytest.mark.parametrize("path", ["/pre%00dict", "/predict%00", "/pre%0Adict"])
@pytest.mark.usefixtures("served_everywhere")
def test_the_router_refuses_control_characters_in_the_path(ctx: StageContext, path: str) -> None:
    router = ctx.state.get("router")["url"]
    status, body = http_json("POST", f"{router}{path}", {"instances": [ROW]})
    assert 400 <= status < 500 and isinstance(body, dict) and body.get("error"), (status, body)


@pytest.mark.usefixtures("served_everywhere")
def test_router_counts_what_it_forwards(ctx: StageContext) -> None:
    router = ctx.state.get("router")["url"]
    answered = drive(router, 50)
    assert answered["production"] + answered["canary"] == 50


# -- MLflow dies: one-line errors, then platform again without orphans -------------------
@pytest.mark.last_in_group
def test_mlflow_dead_is_one_line_and_platform_again_leaves_no_orphans(ctx: StageContext) -> None:
    old = ctx.state.get("platform")["servers"]
    ManagedServer.from_dict(old["mlflow"]).stop()
    for stage in ("train", "promote_canary", "promote_production"):
        done = cli(ctx, stage)
        assert done.returncode == 1, (stage, done.stdout)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (stage, done.stderr)
        assert "not answering" in lines[0] and "platform" in lines[0], lines[0]

    done = cli(ctx, "platform")
    assert done.returncode == 0, done.stderr
    for name in ("training", "evaluation"):
        server = ManagedServer.from_dict(old[name])
        assert not process_alive(server.pid, server.start_time), f"old {name} still runs"
    new = ctx.state.get("platform")["servers"]
    assert {n: s["pid"] for n, s in new.items()} != {n: s["pid"] for n, s in old.items()}
    tracked = [r.name for r in ctx.tracker.list() if r.kind == "process"]
    assert sorted(
        n for n in tracked if n in ("mlflow", "training-service", "evaluation-service")
    ) == ["evaluation-service", "mlflow", "training-service"]


@pytest.mark.last_in_group(1)
def test_the_training_service_honours_sigterm(ctx: StageContext) -> None:
    import os

    from mlops_helpers.waiting import wait_until

    server = ManagedServer.from_dict(ctx.state.get("platform")["servers"]["training"])
    http_json("POST", f"{server.url}/train", {"params": {"C": 2.0}})  # a run in flight
    os.kill(server.pid, signal.SIGTERM)
    wait_until(
        lambda: process_alive(server.pid, server.start_time),
        what="training service",
        timeout=10,
        interval=0.1,
        until=lambda alive: not alive,
        describe=lambda alive: "running" if alive else "ended",
        progress=False,
    )
