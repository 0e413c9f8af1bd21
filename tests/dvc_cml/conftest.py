from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.dvc_cml.stages import PIPELINE
from mlops_helpers.pipeline import StageContext


def make_context(root: Path, log: list[str] | None = None, **params: Any) -> StageContext:
    settings = Settings.load("dvc_cml", params={"run_root": str(root), "attendee": "test",
                                                **params},
                             defaults=PIPELINE.defaults, env_file=root / "no.env")
    return PIPELINE.context(settings, log=(log.append if log is not None else print))


@pytest.fixture
def remote_files() -> Any:
    def listing(folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    return listing
