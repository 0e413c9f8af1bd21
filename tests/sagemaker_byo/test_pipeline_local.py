"""The pipeline on the local backend: one build run once per module, the gates, cleanup.

The notebook test runs the whole flow too; here one build (``build_run``) is run once, step
by step, and each test checks what was seen at one step. Production replaced across builds
and kept by a failed build, and every stage in its own process, are checked by the
Jenkins-shaped run (``test_jenkins_run.py``), which runs exactly that; so is a gate that
says no from the CLI (its smoke test build: exit non-zero, "gate failed: smoke test").
A smoke test below the bar with no production yet is the notebook's gate demo, whose output
nbval compares ("gate failed: smoke test ... below the threshold", "still running
afterwards: nothing; production: none").
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import StageContext
from mlops_helpers.sagemaker_byo.stages import BUILD_STAGES, PIPELINE
from mlops_helpers.servers import ManagedServer, http_json
from tests.support import leftover_processes


def context(make_settings, **params: object) -> StageContext:
    return PIPELINE.context(settings=make_settings("sagemaker_byo", **params), log=lambda _: None)


@dataclass
class BuildRun:
    """What one build showed at each step (the fixture runs it; the tests read it)."""

    ctx: StageContext
    results: dict[str, Any] = field(default_factory=dict)
    refused_before_smoke_test: str = ""
    stale_smoke_test: str = ""
    test_alive_after_deploy: bool = False
    test: dict[str, Any] = field(default_factory=dict)
    prod: dict[str, Any] = field(default_factory=dict)
    invocations: list[int] = field(default_factory=list)
    redeployed_pid: int = 0
    left_after_cleanup: list[Any] = field(default_factory=list)
    test_alive_after_cleanup: bool = True
    prod_ping_after_cleanup: Any = None
    left_after_teardown: list[Any] = field(default_factory=list)
    production_after_teardown: Any = "not torn down"
    processes_after_teardown: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def build_run(module_root: Path) -> BuildRun:
    # one worker per endpoint, as the notebook serves (container_runs covers several)
    settings = Settings.load(
        "sagemaker_byo",
        params={"run_root": str(module_root), "serve_workers": 1},
        env_file=module_root / "no.env",
    )
    run = BuildRun(PIPELINE.context(settings=settings, log=lambda _: None))
    ctx = run.ctx
    try:
        for stage in ("build", "train", "train_status"):
            run.results[stage] = PIPELINE.run_stage(stage, ctx)
        try:  # the gate holds before any smoke test ran
            PIPELINE.run_stage("deploy_prod", ctx)
        except GateFailed as exc:
            run.refused_before_smoke_test = str(exc)
        for stage in ("deploy_test", "smoke_test", "deploy_prod"):
            run.results[stage] = PIPELINE.run_stage(stage, ctx)
            if stage == "deploy_test":
                record = ctx.state.get("endpoints")["test"]
                run.test_alive_after_deploy = ManagedServer.from_dict(record["server"]).alive()
        run.test, run.prod = ctx.state.get("endpoints")["test"], ctx.backend.production()
        run.invocations = [
            http_json(
                "POST",
                f"{r['url']}/invocations",
                raw=b"5.1,3.5,1.4,0.2",
                headers={"Content-Type": "text/csv"},
            )[0]
            for r in (run.test, run.prod)
        ]
        # asked to smoke-test a depth-1 model, the same run folder refuses: its test endpoint
        # serves the depth-4 model train made (issue 27: it passed at 0.92 with the old one)
        stump = Settings.load(
            "sagemaker_byo",
            params={"run_root": str(module_root), "serve_workers": 1, "max_depth": 1},
            env_file=module_root / "no.env",
        )
        try:
            PIPELINE.run_stage("smoke_test", PIPELINE.context(settings=stump, log=lambda _: None))
        except StageError as exc:
            run.stale_smoke_test = str(exc)
        # a second deploy of the same model reuses the running endpoint
        PIPELINE.run_stage("deploy_prod", ctx)
        run.redeployed_pid = ctx.backend.production()["server"]["pid"]
        # cleanup ends the build: the test endpoint goes, production keeps serving
        PIPELINE.run_stage("cleanup", ctx)
        run.left_after_cleanup = ctx.tracker.list()
        run.test_alive_after_cleanup = ManagedServer.from_dict(run.test["server"]).alive()
        run.prod_ping_after_cleanup = http_json("GET", f"{run.prod['url']}/ping")[1]
    finally:
        PIPELINE.run_stage("teardown", ctx)
    run.left_after_teardown = ctx.tracker.list() + ctx.backend.production_tracker.list()
    run.production_after_teardown = ctx.backend.production()
    run.processes_after_teardown = leftover_processes(str(module_root))
    return run


def test_a_build_passes_every_stage(build_run: BuildRun) -> None:
    assert list(build_run.results) == BUILD_STAGES
    assert build_run.results["train_status"]["TrainingJobStatus"] == "Completed"
    assert build_run.results["smoke_test"]["accuracy"] >= 0.9


def test_the_artifact_store_is_laid_out_like_the_bucket(build_run: BuildRun) -> None:
    store = build_run.ctx.run_dir / "artifact-store" / "byo-artifacts-test"
    assert (store / "data" / "train" / "train.csv").is_file()
    job = build_run.results["train"]["job_name"]
    model = store / "training-jobs" / job / "output" / "model.tar.gz"  # SageMaker's key
    with tarfile.open(model) as tar:
        assert sorted(tar.getnames()) == ["model-meta.json", "model.joblib"]


def test_a_stage_refuses_a_result_made_from_other_settings(build_run: BuildRun) -> None:
    stale = build_run.stale_smoke_test
    assert "train ran with max_depth=4, and these settings say max_depth=1" in stale, stale
    assert "Run train then train_status then deploy_test again first" in stale


def test_deploy_prod_refuses_a_model_that_was_not_smoke_tested(build_run: BuildRun) -> None:
    assert "has not passed the smoke test" in build_run.refused_before_smoke_test


def test_both_endpoints_serve_the_smoke_tested_model(build_run: BuildRun) -> None:
    assert build_run.test_alive_after_deploy
    digest = build_run.ctx.state.get("model_digest")
    assert build_run.prod["model_digest"] == build_run.test["model_digest"] == digest
    assert build_run.invocations == [200, 200]


def test_deploy_prod_of_the_same_model_reuses_the_endpoint(build_run: BuildRun) -> None:
    assert build_run.redeployed_pid == build_run.prod["server"]["pid"]


def test_cleanup_stops_the_test_endpoint_and_production_keeps_serving(
    build_run: BuildRun,
) -> None:
    assert build_run.left_after_cleanup == [] and not build_run.test_alive_after_cleanup
    assert build_run.prod_ping_after_cleanup["model_digest"] == build_run.prod["model_digest"]


def test_teardown_leaves_nothing(build_run: BuildRun) -> None:
    assert build_run.left_after_teardown == []
    assert build_run.production_after_teardown is None
    assert build_run.processes_after_teardown == []


def test_bad_hyperparameter_stops_at_train_status_with_the_reason(
    make_settings, run_root: Path
) -> None:
    ctx = context(make_settings, max_depth=0)
    with pytest.raises(GateFailed, match="max_depth=0 must be at least 1"):
        PIPELINE.run(ctx, BUILD_STAGES)
    assert not ctx.state.get("endpoints")
    assert ctx.state.get("model_uri") is None
    assert leftover_processes(str(run_root)) == []


def test_training_over_its_time_limit_fails(make_settings, tmp_path: Path) -> None:
    ctx = context(make_settings, max_runtime=1)
    PIPELINE.run_stage("build", ctx)
    image = ctx.state.get("image")
    # a container whose train program never finishes: the limit must end it
    slow = Path(image["path"]).with_name("slow-image")
    (slow / "program").mkdir(parents=True)
    (slow / "site-packages").mkdir()  # the image's packages: none needed here
    (slow / "program" / "train").write_text("import threading\nthreading.Event().wait(60)\n")
    ctx.state.update(image={**image, "path": str(slow)})
    PIPELINE.run_stage("train", ctx)
    with pytest.raises(GateFailed, match="MaxRuntimeInSeconds 1 exceeded"):
        PIPELINE.run_stage("train_status", ctx)


def test_stages_out_of_order_say_what_to_run_first(make_settings) -> None:
    ctx = context(make_settings)
    with pytest.raises(StageError, match="run the build stage first"):
        PIPELINE.run_stage("train", ctx)
    with pytest.raises(StageError, match="deploy_test"):
        PIPELINE.run_stage("smoke_test", ctx)


def test_build_tag_is_a_content_digest(make_settings) -> None:
    ctx = context(make_settings)
    first = PIPELINE.run_stage("build", ctx)
    again = PIPELINE.run_stage("build", ctx)
    assert first["tag"] == again["tag"] and len(first["tag"]) == 12
    staged = Path(first["path"])
    assert (staged / "Dockerfile").is_file() and (staged / "program" / "serve").is_file()
    status = json.loads((ctx.run_dir / "state.json").read_text())["image"]
    assert status["uri"].endswith(f":{first['tag']}")
