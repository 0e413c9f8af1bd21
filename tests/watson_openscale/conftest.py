from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.pipeline import StageContext
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.support import leftover_processes

MakeContext = Callable[..., StageContext]


def make_context(root: Path, **params: Any) -> StageContext:
    settings = Settings.load("watson_openscale",
                             params={"run_root": str(root), "attendee": "test", **params},
                             defaults=PIPELINE.defaults, env_file=root / "no.env",
                             environ={})
    return PIPELINE.context(settings, log=lambda _: None)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StageContext]:
    """One run up to (and including) subscribe, shared by a module's tests; cleaned after."""
    root = tmp_path_factory.mktemp("wos")
    ctx = make_context(root)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy", "subscribe"])
        yield ctx
    finally:
        PIPELINE.run_stage("cleanup", ctx)
        assert leftover_processes(str(root)) == []
