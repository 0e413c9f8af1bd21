from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_helpers.backends import BackendRegistry
from mlops_helpers.data import DATASETS, load_dataset
from mlops_helpers.errors import (
    GateFailed,
    MissingExtraError,
    UnknownNameError,
    WorkshopError,
)
from mlops_helpers.extras import require
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.resources import teardown_handler
from tests.jenkins_runner import jenkinsfile_stage_calls


def test_registry_lists_known_names_on_unknown() -> None:
    registry: BackendRegistry[object] = BackendRegistry("demo")

    @registry.register("local")
    class Local:
        def __init__(self, ctx: object) -> None:
            self.ctx = ctx

    assert isinstance(registry.create("local", None), Local)
    with pytest.raises(UnknownNameError, match="unknown demo backend 'aws'; known: local"):
        registry.create("aws", None)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("local")(Local)


def test_missing_extra_names_install_command() -> None:
    with pytest.raises(MissingExtraError) as info:
        require("definitely_not_installed_pkg", "aws")
    assert "pip install 'mlops-workshop[aws]'" in str(info.value)
    assert isinstance(info.value, ImportError) and isinstance(info.value, WorkshopError)


def test_require_returns_module() -> None:
    assert require("json", "dev") is json


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_are_bundled_and_seeded(name: str) -> None:
    a, b = load_dataset(name), load_dataset(name)
    assert (a.X_train == b.X_train).all()
    assert a.n_features == len(a.feature_names)
    assert len(a.X_test) > 0 and set(a.y_test) <= set(range(len(a.target_names)))


def test_unknown_dataset() -> None:
    with pytest.raises(UnknownNameError, match="known: breast_cancer, digits, iris, wine"):
        load_dataset("newsgroups")


RELEASED: list[str] = []


@teardown_handler("demo-endpoint")
def _release(params: dict[str, str]) -> None:
    RELEASED.append(params["name"])


def _make_pipeline() -> Pipeline:
    registry: BackendRegistry[object] = BackendRegistry("demo")
    registry.register("local")(lambda ctx: object())

    def deploy(ctx: StageContext) -> dict[str, str]:
        ctx.tracker.add("demo-endpoint", "ep", name="ep")
        ctx.state.update(endpoint="ep")
        return {"endpoint": "ep"}

    def smoke(ctx: StageContext) -> None:
        raise GateFailed("accuracy 0.5 is below the threshold 0.9")

    return Pipeline(
        "demo",
        [
            Stage("deploy", deploy, "start an endpoint", environment="test"),
            Stage("smoke_test", smoke, "check it", gate=True),
            Stage("promote", lambda ctx: {"promoted": True}, "never reached", environment="prod"),
            Stage("cleanup", cleanup_stage, "tear down"),
        ],
        registry,
    )


def test_failed_gate_stops_pipeline_and_cleans_up(make_settings) -> None:
    RELEASED.clear()
    pipeline = _make_pipeline()
    ctx = pipeline.context(settings=make_settings("demo"), log=lambda _m: None)
    with pytest.raises(GateFailed, match="below the threshold"):
        pipeline.run(ctx)
    assert RELEASED == ["ep"]
    results = ctx.state.get("results")
    assert "deploy" in results and "promote" not in results
    assert ctx.tracker.list() == []


def test_unknown_stage_lists_stages() -> None:
    with pytest.raises(UnknownNameError, match="deploy, promote, smoke_test"):
        _make_pipeline().stage("train")


def test_draw_pipeline_writes_png(tmp_path: Path) -> None:
    from mlops_helpers.plots import draw_pipeline

    out = draw_pipeline(_make_pipeline(), tmp_path / "demo.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_return_figures() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from mlops_helpers.plots import plot_confusion_matrix, plot_metric_comparison

    fig = plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], labels=["a", "b", "c"])
    assert fig.axes[0].get_xlabel() == "predicted"
    fig2 = plot_metric_comparison(
        {"main": {"acc": 0.9}, "feature": {"acc": 0.95}}, thresholds={"acc": 0.8}
    )
    assert len(fig2.axes[0].patches) == 2


def test_jenkinsfile_stage_calls_in_order(tmp_path: Path) -> None:
    jf = tmp_path / "Jenkinsfile"
    jf.write_text(
        "sh 'mlops-workshop demo build'\nsh 'mlops-workshop other x'\n"
        "sh \"mlops-workshop demo train -p a b\"\nsh 'mlops-workshop demo build'\n"
    )
    assert jenkinsfile_stage_calls(jf, "demo") == ["build", "train"]
