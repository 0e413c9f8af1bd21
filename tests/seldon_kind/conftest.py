"""The Seldon runtime, and settings whose run directory is temporary (fixtures of this
folder; the shared full run is in tests/fixtures/seldon_kind.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.runtime import ensure_seldon_runtime
from tests.fixtures.seldon_kind import make_context


@pytest.fixture(scope="session")
def seldon_python() -> Path:
    return ensure_seldon_runtime()


@pytest.fixture
def context(run_root: Path) -> Callable[..., StageContext]:
    return lambda **params: make_context(run_root, **params)
