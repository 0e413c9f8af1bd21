"""One full local run of seldon_kind, shared by the test files that read it.

``tests/faults/test_seldon_kind.py`` and ``tests/seldon_kind/test_pipeline_local.py`` each
needed every stage up to the approval; they now share this session-scoped run. Both files
name the xdist group ``GROUP``, so they run on one worker, one after the other (the faults
file first: the conftest sorts slow files ahead). Use it in a test file as
``full_run = shared_runs.full_run``.

pytest makes one fixture per file that imports it (the same session-scoped function
imported twice runs twice), so the first one runs the flow, keeps it in ``_SHARED`` and
cleans up at the end of the session; the others return that run.

The run happens on a copy of the model folders (the gate tests break and mend a unit test
in it), with a socket watch over the whole run (the loopback test reads it). What tests must
compare against later (what production looked like before and right after the approval) is
snapshotted here; tests change the run directory the way a person or a later CI run would,
and each leaves every environment serving.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from mlops_helpers.paths import scenarios_dir
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.gitops import GitOpsRepo
from mlops_helpers.seldon_kind.stages import PIPELINE
from tests.seldon_kind.conftest import make_context
from tests.support import SocketWatch, leftover_processes, listening_sockets

GROUP = "seldon_kind-full-run"
BEFORE_APPROVAL = [
    "unit_tests",
    "train",
    "build",
    "serve_local",
    "integration_test",
    "promote_staging",
    "open_production_change",
]


@dataclass(frozen=True)
class FullRun:
    root: Path  # the run root (every process of the run has it in its environment)
    models: Path  # the run's copy of the model folders
    ctx: StageContext
    results: MappingProxyType[str, Any]  # stage -> its result, as the first run returned it
    before_approval: MappingProxyType[str, Any]  # production, right before the approval
    after_approval: MappingProxyType[str, Any]  # the merge and production, right after it
    sockets: frozenset[tuple[int, str, int]]  # listening at the end: every environment up
    seen: frozenset[tuple[int, str, int]]  # listening at any moment of the run

    def context(self, **params: object) -> StageContext:
        """Another context on the same run directory and model folders (other settings)."""
        return make_context(self.root, models_dir=str(self.models), **params)

    @property
    def repo(self) -> GitOpsRepo:
        return GitOpsRepo(self.ctx.run_dir / "gitops")


def _deployments(ctx: StageContext, env: str) -> dict[str, Any]:
    return dict(ctx.backend.environment(env).record()["deployments"])


def _run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullRun]:
    """The run, until the generator is resumed: then cleanup, and nothing may be left."""
    root = tmp_path_factory.mktemp("seldon-full-run")
    models = tmp_path_factory.mktemp("seldon-models") / "models"
    shutil.copytree(
        scenarios_dir() / "seldon_kind" / "models",
        models,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
    )
    with pytest.MonkeyPatch.context() as patch:
        # every process of the run inherits it: leftover_processes finds survivors by it
        patch.setenv("MLOPS_RUN_ROOT", str(root))
        patch.setenv("MLOPS_ATTENDEE", "test")
        ctx = make_context(root, models_dir=str(models))
        gitops = GitOpsRepo(ctx.run_dir / "gitops")
        try:
            with SocketWatch(str(root)) as watch:  # samples the whole run
                results = PIPELINE.run(ctx, BEFORE_APPROVAL)
                change = ctx.state.get("change")
                before = {
                    "production_folder": gitops.read_environment("production"),
                    "production_servers": _deployments(ctx, "production"),
                    "branch_folder": gitops.read_environment("production", change["branch"]),
                    "description": gitops.show_file(change["description"], change["branch"]),
                }
                results["approve_production"] = PIPELINE.run_stage("approve_production", ctx)
                merge = gitops.log(limit=1)[0]
                after = {
                    "merge": merge,
                    "production_commit": ctx.backend.environment("production").record()["commit"],
                    "production_versions": {
                        n: e["version"] for n, e in _deployments(ctx, "production").items()
                    },
                    "staging_versions": {
                        n: e["version"] for n, e in _deployments(ctx, "staging").items()
                    },
                }
                # every environment is up now: test, staging and production
                at_the_end = listening_sockets(str(root))
            yield FullRun(
                root,
                models,
                ctx,
                MappingProxyType(results),
                MappingProxyType(before),
                MappingProxyType(after),
                frozenset(at_the_end),
                frozenset(watch.seen),
            )
        finally:
            PIPELINE.run_stage("cleanup", ctx)
            assert leftover_processes(str(root)) == []


_SHARED: dict[str, FullRun] = {}


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> FullRun:
    if GROUP not in _SHARED:
        flow = _run(tmp_path_factory)
        _SHARED[GROUP] = next(flow)

        def finish() -> None:
            del _SHARED[GROUP]
            next(flow, None)  # the cleanup after the yield

        request.addfinalizer(finish)
    return _SHARED[GROUP]
