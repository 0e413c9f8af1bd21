from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.pipeline import StageContext
from mlops_helpers.watson_openscale.stages import PIPELINE

MakeContext = Callable[..., StageContext]


def make_context(root: Path, **params: Any) -> StageContext:
    settings = Settings.load(
        "watson_openscale",
        params={"run_root": str(root), "attendee": "test", **params},
        defaults=PIPELINE.defaults,
        env_file=root / "no.env",
        environ={},
    )
    return PIPELINE.context(settings, log=lambda _: None)


# -- the IBM Cloud double ------------------------------------------------------------------
# It lists IBM's published runtimes (scikit-learn 1.3 and 1.6); the ibm backend trains the
# model in .venvs/ibm-runtime (make install), with the scikit-learn runtime-25.1 serves.


@pytest.fixture
def ibm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A running IBM Cloud double; its settings are in the environment (as Jenkins passes
    them), so every stage, teardown and child process of the test finds it."""
    from tests.doubles.ibm_cloud import running_double

    with running_double(tmp_path / "ibm-double") as double:
        for key, value in double.environ().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(double.ca_bundle))
        monkeypatch.setenv("MLOPS_POLL_INTERVAL", "0.05")
        yield double


def ibm_context(root: Path, log: list[str] | None = None, **params: Any) -> StageContext:
    """A stage context on the ibm backend; settings from the environment (the fixture)."""
    import os

    settings = Settings.load(
        "watson_openscale",
        params={"run_root": str(root), "attendee": "test", "backend": "ibm", **params},
        defaults=PIPELINE.defaults,
        env_file=root / "no.env",
        environ=dict(os.environ),
    )
    return PIPELINE.context(settings, log=(log.append if log is not None else lambda _: None))
