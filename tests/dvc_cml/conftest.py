from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.dvc_cml.stages import PIPELINE, create_sandbox
from mlops_helpers.pipeline import StageContext
from tests.dvc_cml.support import environment_restored


@pytest.fixture(scope="module", autouse=True)
def _no_aws_environment() -> Iterator[None]:
    """No AWS variable from the machine in, none of ours (moto's keys) out of a module."""
    with environment_restored():
        yield


def make_context(root: Path, log: list[str] | None = None, **params: Any) -> StageContext:
    settings = Settings.load(
        "dvc_cml",
        params={"run_root": str(root), "attendee": "test", **params},
        defaults=PIPELINE.defaults,
        env_file=root / "no.env",
    )
    return PIPELINE.context(settings, log=(log.append if log is not None else print))


def sandbox_context(root: Path, log: list[str] | None = None, **params: Any) -> StageContext:
    """The learner's sandbox with its pull request, and a context whose stages work on it
    the way a Jenkins PR build's do (workspace + change_* settings)."""
    pull_request = create_sandbox(make_context(root, log, **params))
    return make_context(root, log, **params, **pull_request)


@pytest.fixture
def remote_files() -> Any:
    def listing(folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    return listing
