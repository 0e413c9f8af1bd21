"""The lifecycle on the local backend, end to end, and its failure cases.

One platform (MLflow, the launcher and both services) serves this file and the fault tests
(``tests/fixtures/continuous_x.py``): starting it is the slow part. Each test names the state
it needs (a fixture there): it is made only when what ran before did not leave it, so the
tests pass in any order and in file order pay for one release.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_helpers.continuous_x.stages import PIPELINE, await_run, serving
from mlops_helpers.continuous_x.traffic import drive, drive_until_judged
from mlops_helpers.errors import ConfigError, GateFailed, StageError, WaitTimeout
from mlops_helpers.pipeline import StageContext
from mlops_helpers.servers import http_json
from tests.fixtures.continuous_x import GROUP, MODEL, fresh_environments, make, release

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(GROUP)]


@pytest.fixture(scope="module")
def ctx(shared_platform: StageContext) -> StageContext:
    return fresh_environments(shared_platform)


@pytest.fixture
def two_builds(served_everywhere: StageContext, shared_root: Path) -> StageContext:
    """Version 1 built and one more version beside it."""
    ctx = served_everywhere
    builds = ctx.state.get("builds") or {}
    if "1" not in builds:  # version 1 may come from a test that built nothing (the faults')
        builds["1"] = ctx.backend.build(MODEL, "1")
        ctx.state.update(builds=builds)
    if len(builds) < 2:
        release(ctx, shared_root, C=0.5)
    return ctx


@pytest.mark.usefixtures("nothing_served")
def test_lifecycle_each_environment_serves_what_it_should(
    ctx: StageContext, shared_root: Path
) -> None:
    assert serving(ctx) == {"staging": None, "canary": None, "production": None}
    v1 = release(ctx, shared_root)
    assert serving(ctx) == {"staging": v1, "canary": None, "production": None}
    PIPELINE.run_stage("promote_canary", ctx)
    assert serving(ctx) == {"staging": v1, "canary": v1, "production": None}
    PIPELINE.run_stage("promote_production", ctx)
    assert serving(ctx) == {"staging": v1, "canary": v1, "production": v1}


@pytest.mark.usefixtures("first_release")
def test_a_worse_canary_is_refused_on_its_live_figures_and_rolled_back(
    ctx: StageContext, shared_root: Path
) -> None:
    v1 = serving(ctx)["production"]
    newest = max(map(int, ctx.backend.mlflow().versions("continuous-x-model-test")))
    # a deliberately worse model: a forest of 400 trees answers far slower than production
    slow = release(
        ctx,
        shared_root,
        model_type="random_forest",
        n_estimators=400,
        max_depth=3,
        min_accuracy=0.85,
    )
    assert int(slow) == newest + 1
    assert serving(ctx) == {"staging": slow, "canary": v1, "production": v1}
    PIPELINE.run_stage("promote_canary", ctx)
    assert serving(ctx) == {"staging": slow, "canary": slow, "production": v1}
    # the canary gate refuses before the canary has seen live traffic ...
    with pytest.raises(GateFailed, match="canary has served 0 requests"):
        PIPELINE.run_stage("promote_production", ctx)
    # ... and on its figures once it has, with the rules the notebook and the CLI use
    drive_until_judged(ctx.state.get("router")["url"], ctx.settings.canary_min_requests)
    with pytest.raises(GateFailed, match=r"canary median latency .* ms is above .* ms") as err:
        PIPELINE.run_stage("promote_production", ctx)
    assert f"canary version {slow} is not promoted" in str(err.value)
    assert err.value.next_step.stage == "revert"  # each front end says it in its own words
    assert err.value.next_step.params == {"revert_environment": "canary"}
    gate = ctx.state.get("canary_gate")
    assert gate["version"] == slow and not gate["passed"]
    assert gate["canary"]["requests"] >= ctx.settings.canary_min_requests
    assert gate["production"]["requests"] >= ctx.settings.canary_min_requests
    assert gate["canary"]["p50_ms"] > 2 * gate["production"]["p50_ms"]
    assert serving(ctx)["production"] == v1
    # roll the canary back to what it served before
    rolled = PIPELINE.run_stage("revert", make(shared_root, revert_environment="canary"))
    assert rolled["reverted"] and rolled["from_version"] == slow
    assert serving(ctx) == {"staging": slow, "canary": v1, "production": v1}


@pytest.mark.usefixtures("first_release")
def test_a_good_canary_goes_to_production_and_can_be_reverted(
    ctx: StageContext, shared_root: Path
) -> None:
    v1 = serving(ctx)["production"]
    v3 = release(ctx, shared_root, C=0.5)
    PIPELINE.run_stage("promote_canary", ctx)
    assert serving(ctx) == {"staging": v3, "canary": v3, "production": v1}
    drive_until_judged(ctx.state.get("router")["url"], ctx.settings.canary_min_requests)
    # the same rules as the notebook and the CLI: the median of the same window judges
    result = PIPELINE.run_stage("promote_production", ctx)
    assert result["canary_gate"]["passed"] and result["canary_gate"]["version"] == v3
    assert result["canary_gate"]["canary"]["requests"] >= ctx.settings.canary_min_requests
    assert serving(ctx) == {"staging": v3, "canary": v3, "production": v3}
    # promoting again changes nothing and records nothing
    PIPELINE.run_stage("promote_production", ctx)
    assert ctx.state.get("history")["production"] == [v1, v3]

    reverted = PIPELINE.run_stage("revert", ctx)
    assert reverted["reverted"] and reverted["from_version"] == v3
    assert reverted["model_version"] == v1
    assert serving(ctx) == {"staging": v3, "canary": v3, "production": v1}
    again = PIPELINE.run_stage("revert", ctx)  # nothing earlier than v1: not "reverted"
    assert not again["reverted"] and again["model_version"] == v1
    # the alias moved back too, and the app answers with the old version
    assert ctx.backend.mlflow().alias("continuous-x-model-test", "production") == v1
    url = ctx.state.get("deployments")["production"]["url"]
    status, body = http_json("POST", f"{url}/predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert status == 200 and body["model_version"] == v1 and body["predictions"] == [0]


@pytest.mark.usefixtures("served_everywhere")
def test_the_router_sends_the_configured_share_to_canary(ctx: StageContext) -> None:
    router = ctx.state.get("router")["url"]
    http_json("POST", f"{router}/router/reset", {})
    answered = drive(router, 2000)
    assert sum(answered.values()) == 2000
    assert abs(answered["canary"] / 2000 - 0.10) <= 0.03, answered
    stats = http_json("GET", f"{router}/router/stats")[1]
    counted = {
        env: sum(f["requests"] for f in versions.values())
        for env, versions in stats["environments"].items()
    }
    assert counted == dict(answered) and stats["weight"] == 0.10
    for versions in stats["environments"].values():
        for figures in versions.values():
            assert figures["errors"] == 0 and figures["p95_ms"] > 0


@pytest.mark.usefixtures("two_builds")
def test_builds_are_content_tagged_and_reused(ctx: StageContext) -> None:
    builds = ctx.state.get("builds")
    tags = {version: build["tag"] for version, build in builds.items()}
    assert len(set(tags.values())) == len(tags) >= 2
    for version, tag in tags.items():
        assert tag.startswith(f"v{version}-")
        assert (Path(builds[version]["path"]) / "manifest.json").is_file()
    rebuilt = ctx.backend.build("continuous-x-model-test", "1")
    assert rebuilt["tag"] == tags["1"] and rebuilt["path"] == builds["1"]["path"]


def test_bad_training_parameters_are_refused_before_any_run(
    ctx: StageContext, shared_root: Path
) -> None:
    before_versions = ctx.backend.mlflow().versions("continuous-x-model-test")
    before, run_before = serving(ctx), ctx.state.get("run_id")
    bad = make(shared_root, C=-1.0)
    with pytest.raises(ConfigError, match=r"setting 'C' from parameter is -1\.0"):
        PIPELINE.run_stage("train", bad)  # its declaration refuses it, before any request
    assert ctx.backend.mlflow().versions("continuous-x-model-test") == before_versions
    assert serving(ctx) == before and ctx.state.get("run_id") == run_before


def test_a_failed_run_is_refused_by_evaluate(ctx: StageContext) -> None:
    mlflow = ctx.backend.mlflow()
    status, body = http_json(
        "POST", f"{mlflow.url}/api/2.0/mlflow/runs/create", {"experiment_id": "0"}
    )
    run_id = body["run"]["info"]["run_id"]
    http_json(
        "POST", f"{mlflow.url}/api/2.0/mlflow/runs/update", {"run_id": run_id, "status": "FAILED"}
    )
    with pytest.raises(StageError, match="is FAILED; only FINISHED runs are evaluated"):
        ctx.backend.evaluate(run_id, 0.9)


def test_below_threshold_registers_no_version(ctx: StageContext, shared_root: Path) -> None:
    before_versions = ctx.backend.mlflow().versions("continuous-x-model-test")
    weak = make(shared_root, max_iter=1, C=0.0001)
    PIPELINE.run_stage("train", weak)
    with pytest.raises(GateFailed, match="below the threshold"):
        PIPELINE.run_stage("evaluate", weak)
    assert ctx.backend.mlflow().versions("continuous-x-model-test") == before_versions


def test_a_run_that_never_finishes_hits_the_timeout_naming_it(ctx: StageContext) -> None:
    mlflow = ctx.backend.mlflow()
    status, body = http_json(
        "POST", f"{mlflow.url}/api/2.0/mlflow/runs/create", {"experiment_id": "0"}
    )
    assert status == 200
    run_id = body["run"]["info"]["run_id"]  # created, never ended: RUNNING forever
    with pytest.raises(WaitTimeout, match=run_id) as err:
        await_run(ctx, run_id, timeout=0.3)
    assert "RUNNING" in str(err.value)


def test_promoting_a_version_that_does_not_exist_is_refused(
    ctx: StageContext, shared_root: Path
) -> None:
    before = serving(ctx)
    with pytest.raises(GateFailed, match="version 99 .* does not exist"):
        PIPELINE.run_stage("promote_canary", make(shared_root, version=99))
    assert serving(ctx) == before


@pytest.mark.parametrize(
    ("service", "path", "body"),
    [
        ("training", "/train", {"model_type": "svm"}),
        ("training", "/train", {"dataset": "iris", "surprise": 1}),
        ("training", "/train", {"params": {"C": [1, 2]}}),
        ("evaluation", "/evaluate", {"run": "abc"}),
        ("evaluation", "/evaluate", {"run_id": "../etc"}),
        ("evaluation", "/evaluate", {"run_id": "0123456789abcdef"}),
    ],
)
def test_services_answer_malformed_requests_with_4xx(
    ctx: StageContext, service: str, path: str, body: object
) -> None:
    url = ctx.backend.urls()[service]
    status, answer = http_json("POST", f"{url}{path}", body)
    assert 400 <= status < 500 and "error" in answer, answer
    assert http_json("GET", f"{url}/health")[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[1.0, 2.0]]},
        {"instances": [[1.0, "two", 3.0, 4.0]]},
        {"instances": []},
        {"rows": [[5.1, 3.5, 1.4, 0.2]]},
        [1, 2, 3],
    ],
)
@pytest.mark.usefixtures("served_everywhere")
def test_app_answers_malformed_requests_with_4xx(ctx: StageContext, body: object) -> None:
    url = ctx.state.get("deployments")["staging"]["url"]
    status, answer = http_json("POST", f"{url}/predict", body)
    assert 400 <= status < 500 and "error" in answer, answer
    ok, good = http_json("POST", f"{url}/predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert ok == 200 and good["predictions"] == [0]


def _start(**fields: object) -> bytes:
    """A launcher start request: a staging app's, with ``fields`` changed."""
    request = {
        "app": "app.main:app",
        "cwd": "/tmp",
        "env": {"APP_ENVIRONMENT": "staging"},
        "port": 20000,
        "log": "/tmp/x.log",
    }
    return json.dumps({**request, **fields}).encode()


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/start", b"not json"),
        ("/start", b"[1, 2]"),
        ("/start", json.dumps({"app": "app.main:app"}).encode()),  # fields missing
        ("/start", _start(cwd="/nonexistent")),
        ("/start", _start()),  # /tmp holds no build
        ("/start", _start(app="os:system")),  # only the scenario's own servers
        ("/start", _start(app="training_api:app", env={"MIN_ACCURACY": 0.5})),
        ("/start", _start(port="many")),
        ("/start", _start(app="training_api:app", port=80)),
        ("/stop", b"{}"),
    ],
)
@pytest.mark.usefixtures("served_everywhere")
def test_the_app_launcher_refuses_bad_requests_with_4xx(
    ctx: StageContext, path: str, raw: bytes
) -> None:
    url = ctx.state.get("launcher")["url"]
    status, answer = http_json(
        "POST", f"{url}{path}", raw=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= status < 500 and "error" in answer, answer
    assert http_json("GET", f"{url}/health")[0] == 200
