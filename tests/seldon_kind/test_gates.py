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
from tests.fixtures.seldon_kind import GROUP, FullRun
from tests.support import leftover_processes

MODELS = scenarios_dir() / "seldon_kind" / "models"
pytestmark = pytest.mark.xdist_group(GROUP)


def test_a_failing_unit_test_stops_everything(
    context: Callable[..., StageContext], tmp_path: Path, run_root: Path, seldon_python: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    test = models / "news_classifier" / "tests" / "test_news_classifier.py"
    test.write_text(test.read_text().replace('== ["sport", "tech"]', '== ["tech", "sport"]'))
    ctx = context(models_dir=str(models))
    # the failing folder is named, with pytest's count; the passing ones are not
    with pytest.raises(
        GateFailed, match=r"unit tests failed in news_classifier \(1 failed"
    ) as failed:
        PIPELINE.run(ctx)
    assert "linear_server" not in str(failed.value) and "sklearn" not in str(failed.value)
    assert ctx.state.get("unit_tests")["passed"] is False
    assert ctx.state.get("models") is None
    assert not (ctx.run_dir / "gitops").exists(), "nothing may reach the GitOps repo"
    assert leftover_processes(str(run_root)) == []


def test_train_refuses_folders_that_changed_after_their_tests(full_run: FullRun) -> None:
    server = full_run.models / "linear_server" / "LinearServer.py"
    tested = server.read_text()
    server.write_text(tested + "\n# an untested change\n")
    try:
        with pytest.raises(GateFailed, match="have not passed their unit tests"):
            PIPELINE.run_stage("train", full_run.ctx)
    finally:
        server.write_text(tested)  # the run's folders are the tested ones again


def test_promotion_needs_a_passed_integration_test(full_run: FullRun) -> None:
    """A new release (a retrained model, a new image) has not passed the integration test,
    even when the release before it did: it is not promoted."""
    head = full_run.repo.head()
    newer = full_run.context(news_c=0.75)  # a value no other test trains
    try:
        for stage in ("train", "build"):  # stage by stage: a failure must not clean up
            PIPELINE.run_stage(stage, newer)
        with pytest.raises(GateFailed, match="has not passed the integration test"):
            PIPELINE.run_stage("promote_staging", newer)
        assert full_run.repo.head() == head
    finally:  # the run's release is the tested one again (its models are reused)
        for stage in ("train", "build"):
            PIPELINE.run_stage(stage, full_run.ctx)


def test_stages_out_of_order_say_what_to_run_first(context: Callable[..., StageContext]) -> None:
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
