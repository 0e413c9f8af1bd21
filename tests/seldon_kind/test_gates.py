"""Gates: a model whose tests fail is never trained or promoted; stages out of order say
what to run first; production needs an approver who is not the CI."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.paths import scenarios_dir
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.stages import PIPELINE
from tests.support import leftover_processes

MODELS = scenarios_dir() / "seldon_kind" / "models"


def test_a_failing_unit_test_stops_everything(
        context: Callable[..., StageContext], tmp_path: Path, run_root: Path,
        seldon_python: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    test = models / "news_classifier" / "tests" / "test_news_classifier.py"
    test.write_text(test.read_text().replace('== ["sport", "tech"]', '== ["tech", "sport"]'))
    ctx = context(models_dir=str(models))
    with pytest.raises(GateFailed, match=r"unit tests failed in news_classifier .*1 failed"):
        PIPELINE.run(ctx)
    assert ctx.state.get("unit_tests")["passed"] is False
    assert ctx.state.get("models") is None
    assert not (ctx.run_dir / "gitops").exists(), "nothing may reach the GitOps repo"
    assert leftover_processes(str(run_root)) == []


def test_train_refuses_folders_that_changed_after_their_tests(
        context: Callable[..., StageContext], tmp_path: Path, seldon_python: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    ctx = context(models_dir=str(models))
    PIPELINE.run_stage("unit_tests", ctx)
    server = models / "linear_server" / "LinearServer.py"
    server.write_text(server.read_text() + "\n# an untested change\n")
    with pytest.raises(GateFailed, match="have not passed their unit tests"):
        PIPELINE.run_stage("train", ctx)


def test_promotion_needs_a_passed_integration_test(
        context: Callable[..., StageContext], seldon_python: Path) -> None:
    ctx = context()
    PIPELINE.run(ctx, ["unit_tests", "train", "build"])
    with pytest.raises(GateFailed, match="has not passed the integration test"):
        PIPELINE.run_stage("promote_staging", ctx)
    assert not (ctx.run_dir / "gitops").exists()


def test_stages_out_of_order_say_what_to_run_first(
        context: Callable[..., StageContext]) -> None:
    ctx = context()
    with pytest.raises(GateFailed, match="run unit_tests"):
        PIPELINE.run_stage("train", ctx)
    with pytest.raises(StageError, match="run train first"):
        PIPELINE.run_stage("serve_local", ctx)
    with pytest.raises(StageError, match="run promote_staging first"):
        PIPELINE.run_stage("open_production_change", ctx)


def test_the_ci_cannot_approve_its_own_change(context: Callable[..., StageContext]) -> None:
    ctx = context(approver="workshop-ci")
    ctx.state.update(change={"branch": "promote-production-x", "release": {}})
    with pytest.raises(GateFailed, match="approver other than the CI"):
        PIPELINE.run_stage("approve_production", ctx)
    assert ctx.state.get("change")["branch"] == "promote-production-x"
