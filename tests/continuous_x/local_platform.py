"""The continuous_x local platform shared by the lifecycle and fault tests: a stage context
on a module's run root, and the platform (MLflow, services, router) up for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlops_helpers.config import Settings
from mlops_helpers.continuous_x.stages import PIPELINE
from mlops_helpers.pipeline import StageContext
from tests.support import leftover_processes


def make(root: Path, **params: object) -> StageContext:
    settings = Settings.load("continuous_x", params={"run_root": str(root), **params},
                             env_file=root / "no.env")
    return PIPELINE.context(settings=settings, log=lambda _: None)


def platform_context(root: Path) -> Iterator[StageContext]:
    """The platform up for a module; afterwards cleanup leaves nothing tracked or running."""
    context = make(root)
    PIPELINE.run_stage("platform", context)
    yield context
    PIPELINE.run_stage("cleanup", context)
    assert context.tracker.list() == []
    assert leftover_processes(str(root)) == []
