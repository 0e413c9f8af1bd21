"""The pipeline on the local backend: a full run, the gates, idempotence, cleanup."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import StageContext
from mlops_helpers.sagemaker_byo.stages import BUILD_STAGES, PIPELINE
from mlops_helpers.servers import ManagedServer, http_json
from tests.support import leftover_processes


def context(make_settings, **params: object) -> StageContext:
    return PIPELINE.context(settings=make_settings("sagemaker_byo", **params),
                            log=lambda _: None)


def test_full_run_then_teardown_leaves_nothing(make_settings, run_root: Path) -> None:
    ctx = context(make_settings)
    try:
        results = PIPELINE.run(ctx, BUILD_STAGES)
        assert list(results) == BUILD_STAGES
        assert results["train_status"]["TrainingJobStatus"] == "Completed"
        assert results["smoke_test"]["accuracy"] >= 0.9
        # the artifact store is laid out like the bucket, with SageMaker's model key
        store = ctx.run_dir / "artifact-store" / "byo-artifacts-test"
        assert (store / "data" / "train" / "train.csv").is_file()
        job = results["train"]["job_name"]
        model = store / "training-jobs" / job / "output" / "model.tar.gz"
        with tarfile.open(model) as tar:
            assert sorted(tar.getnames()) == ["model-meta.json", "model.joblib"]
        test, prod = ctx.state.get("endpoints")["test"], ctx.backend.production()
        assert prod["model_digest"] == test["model_digest"] == ctx.state.get("model_digest")
        for record in (test, prod):
            assert http_json("POST", f"{record['url']}/invocations", raw=b"5.1,3.5,1.4,0.2",
                             headers={"Content-Type": "text/csv"})[0] == 200
        # a second deploy of the same model reuses the running endpoint
        PIPELINE.run_stage("deploy_prod", ctx)
        assert ctx.backend.production()["server"]["pid"] == prod["server"]["pid"]
        # cleanup ends the build: the test endpoint goes, production keeps serving
        PIPELINE.run_stage("cleanup", ctx)
        assert ctx.tracker.list() == [] and not ManagedServer.from_dict(test["server"]).alive()
        assert http_json("GET", f"{prod['url']}/ping")[1]["model_digest"] == prod["model_digest"]
    finally:
        PIPELINE.run_stage("teardown", ctx)
    assert ctx.tracker.list() == [] and ctx.backend.production_tracker.list() == []
    assert ctx.backend.production() is None
    assert leftover_processes(str(run_root)) == []


def test_production_is_updated_in_place_and_survives_a_failed_build(
    make_settings, run_root: Path
) -> None:
    first = context(make_settings, max_depth=4)
    try:
        PIPELINE.run(first, BUILD_STAGES)
        PIPELINE.run_stage("cleanup", first)
        old = first.backend.production()
        # a different model passes: the same endpoint name now serves it, the old is gone
        second = context(make_settings, criterion="entropy")
        PIPELINE.run(second, BUILD_STAGES)
        PIPELINE.run_stage("cleanup", second)
        new = second.backend.production()
        assert new["endpoint_name"] == old["endpoint_name"]
        assert new["model_digest"] != old["model_digest"]
        assert not ManagedServer.from_dict(old["server"]).alive()
        assert len(second.backend.production_tracker.list()) == 2  # one server, its files
        # a model that fails the smoke test: production keeps serving the second model
        third = context(make_settings, max_depth=1)
        with pytest.raises(GateFailed, match="below the threshold"):
            PIPELINE.run(third, BUILD_STAGES)
        assert third.backend.production() == new
        assert http_json("GET", f"{new['url']}/ping")[1]["model_digest"] == new["model_digest"]
        assert third.tracker.list() == []
    finally:
        PIPELINE.run_stage("teardown", first)
    assert leftover_processes(str(run_root)) == []


def test_bad_hyperparameter_stops_at_train_status_with_the_reason(
    make_settings, run_root: Path
) -> None:
    ctx = context(make_settings, max_depth=0)
    with pytest.raises(GateFailed, match="max_depth=0 must be at least 1"):
        PIPELINE.run(ctx, BUILD_STAGES)
    assert not ctx.state.get("endpoints")
    assert ctx.state.get("model_uri") is None
    assert leftover_processes(str(run_root)) == []


def test_smoke_test_below_threshold_creates_no_prod_and_tears_down(
    make_settings, run_root: Path
) -> None:
    ctx = context(make_settings, max_depth=1)
    with pytest.raises(GateFailed, match=r"accuracy 0\.\d+ .* below the threshold 0\.9"):
        PIPELINE.run(ctx, BUILD_STAGES)
    assert ctx.backend.production() is None
    assert ctx.tracker.list() == []
    assert leftover_processes(str(run_root)) == []


def test_deploy_prod_refuses_a_model_that_was_not_smoke_tested(
    make_settings, run_root: Path
) -> None:
    ctx = context(make_settings)
    try:
        PIPELINE.run(ctx, ["build", "train", "train_status"])
        with pytest.raises(GateFailed, match="has not passed the smoke test"):
            PIPELINE.run_stage("deploy_prod", ctx)
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert leftover_processes(str(run_root)) == []


def test_training_over_its_time_limit_fails(make_settings, tmp_path: Path) -> None:
    ctx = context(make_settings, max_runtime=1)
    PIPELINE.run_stage("build", ctx)
    image = ctx.state.get("image")
    # a container whose train program never finishes: the limit must end it
    slow = Path(image["path"]).with_name("slow-image")
    (slow / "program").mkdir(parents=True)
    (slow / "program" / "train").write_text(
        "import threading\nthreading.Event().wait(60)\n")
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


def test_endpoint_record_survives_a_new_process(make_settings, run_root: Path) -> None:
    ctx = context(make_settings)
    try:
        PIPELINE.run(ctx, ["build", "train", "train_status", "deploy_test"])
        record = ctx.state.get("endpoints")["test"]
        assert ManagedServer.from_dict(record["server"]).alive()
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert not ManagedServer.from_dict(record["server"]).alive()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlops-workshop")
    return subprocess.run([str(exe), "sagemaker_byo", *args], capture_output=True, text=True,
                          timeout=180, check=False)


@pytest.mark.slow
def test_each_stage_in_its_own_process_as_jenkins_runs_them(run_root: Path) -> None:
    try:
        for stage in BUILD_STAGES:
            done = cli(stage)
            assert done.returncode == 0, f"{stage}: {done.stdout}\n{done.stderr}"
        assert leftover_processes(str(run_root)), "the endpoints should be running now"
        done = cli("cleanup")
        assert done.returncode == 0, done.stderr
        assert leftover_processes(str(run_root)), "production should still be serving"
    finally:
        done = cli("teardown")
    assert done.returncode == 0, done.stderr
    assert leftover_processes(str(run_root)) == []


@pytest.mark.slow
def test_cli_gate_failure_exits_non_zero_with_the_reason(run_root: Path) -> None:
    try:
        for stage in ("build", "train", "train_status", "deploy_test"):
            assert cli(stage, "-p", "max_depth", "1").returncode == 0
        done = cli("smoke_test", "-p", "max_depth", "1")
        assert done.returncode == 1
        assert "gate failed: smoke test" in done.stderr
        refused = cli("deploy_prod")
        assert refused.returncode == 1 and "has not passed the smoke test" in refused.stderr
    finally:
        cli("teardown")
    assert leftover_processes(str(run_root)) == []
