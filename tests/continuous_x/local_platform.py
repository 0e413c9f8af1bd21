"""The continuous_x local platform shared by the lifecycle and fault tests.

Starting the platform (MLflow, the launcher, both services) is the slow part, so ONE platform
serves both files: they name the same xdist group (one worker), and the session fixture
``shared_platform`` starts it once and cleans it up at the end of the session (in a test
file: ``shared_platform = local_platform.shared_platform``, and ``shared_root`` alike).
Each file's own ``ctx`` fixture (``fresh_environments``) first makes sure the platform runs
(a file before may have killed MLflow or a service) and that no environment serves
anything, so a file starts from the same state whether it runs alone, first or second.
Registered model versions stay: the tests compare versions before and after, never
absolute numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.continuous_x.stages import PIPELINE
from mlops_helpers.pipeline import StageContext
from mlops_helpers.servers import ManagedServer
from tests.support import leftover_processes

GROUP = "continuous_x_local"
# what a release leaves in the run's state (the platform and the launcher stay)
RELEASE_STATE = ("deployments", "history", "router", "canary_gate", "run_id", "candidate_version")


def make(root: Path, **params: object) -> StageContext:
    settings = Settings.load(
        "continuous_x",
        params={"run_root": str(root), "attendee": "test", **params},
        env_file=root / "no.env",
    )
    return PIPELINE.context(settings=settings, log=lambda _: None)


def marks(root: Path) -> dict[str, str]:
    """The variables that tie a process to the run root (``leftover_processes`` looks for
    the root in every process's environment)."""
    return {"MLOPS_RUN_ROOT": str(root), "MLOPS_ATTENDEE": "test"}


def cli_env(root: Path) -> dict[str, str]:
    """The environment of a ``mlops-workshop`` process working on the shared run root."""
    return {**os.environ, **marks(root)}


def start_platform(context: StageContext) -> None:
    """The platform stage, in this process but with the run root's marks in the
    environment the servers inherit (only while it runs: this session's other tests never
    see them)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in marks(Path(context.settings.get("run_root"))).items():
            patch.setenv(key, value)
        PIPELINE.run_stage("platform", context)


_SHARED: dict[str, StageContext] = {}  # the one platform of the session


@pytest.fixture(scope="session")
def shared_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StageContext]:
    """The platform up for the session; afterwards cleanup leaves nothing tracked or
    running. pytest makes one such fixture per file that imports it: the first starts the
    platform (and cleans it up at the end of the session), the others return it."""
    if "platform" in _SHARED:
        yield _SHARED["platform"]
        return
    root = tmp_path_factory.mktemp("continuous-x-runs")
    context = _SHARED["platform"] = make(root)
    try:
        start_platform(context)
        yield context
    finally:
        del _SHARED["platform"]
        PIPELINE.run_stage("cleanup", context)
    assert context.tracker.list() == []
    assert leftover_processes(str(root)) == []


@pytest.fixture(scope="module")
def shared_root(shared_platform: StageContext) -> Path:
    """The shared platform's run root (its stages' settings name it)."""
    return Path(shared_platform.settings.get("run_root"))


def fresh_environments(context: StageContext) -> StageContext:
    """The platform running (again, if a test stopped part of it) and no environment
    serving: every app and the router stopped, the release state forgotten."""
    start_platform(context)
    deployments = context.state.get("deployments") or {}
    router = context.state.get("router") or {}
    for server in [d["server"] for d in deployments.values()] + [router.get("server")]:
        if server:
            ManagedServer.from_dict(server).stop(context.tracker)
    for key in RELEASE_STATE:
        context.state.pop(key)
    return context
