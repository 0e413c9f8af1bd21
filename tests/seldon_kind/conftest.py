"""Shared fixtures: the Seldon runtime, and settings whose run directory is temporary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.runtime import ensure_seldon_runtime
from mlops_helpers.seldon_kind.stages import PIPELINE


@pytest.fixture(scope="session")
def seldon_python() -> Path:
    return ensure_seldon_runtime()


def make_context(root: Path, **params: object) -> StageContext:
    settings = Settings.load(
        "seldon_kind", params={"run_root": str(root), **params}, env_file=root / "no.env"
    )
    return PIPELINE.context(settings=settings, log=lambda _m: None)


@pytest.fixture
def context(run_root: Path) -> Callable[..., StageContext]:
    return lambda **params: make_context(run_root, **params)
