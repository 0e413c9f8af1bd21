from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_helpers.config import Settings


@pytest.fixture
def run_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every run directory of the test goes under tmp_path, never into the checkout."""
    root = tmp_path / "runs"
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(root))
    monkeypatch.setenv("MLOPS_ATTENDEE", "test")
    yield root


@pytest.fixture(scope="module")
def module_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A run root for a whole module (for flows too slow to repeat per test); the processes
    the tests start inherit it."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_RUN_ROOT", str(root))
        patch.setenv("MLOPS_ATTENDEE", "test")
        yield root


@pytest.fixture
def make_settings(run_root: Path):
    def make(scenario: str, **params: object) -> Settings:
        return Settings.load(scenario, params={"run_root": str(run_root), **params},
                             env_file=run_root / "no.env")

    return make
