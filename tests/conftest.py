from __future__ import annotations

import os
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
        return Settings.load(
            scenario, params={"run_root": str(run_root), **params}, env_file=run_root / "no.env"
        )

    return make


# -- running in parallel (`make test`: pytest -n auto --dist loadgroup) -----------------------
NOTEBOOK_RUNS = "tests/notebooks/test_run_notebooks.py"


def _longest_first(item: pytest.Item) -> int:
    """A rough size class of the test's group: xdist hands groups out in this order, so the
    longest start first and the run does not end waiting on one of them (measured: the room,
    the Jenkins-shaped builds and the notebooks are the longest)."""
    if item.get_closest_marker("room"):
        return 0
    if item.nodeid.startswith(NOTEBOOK_RUNS) or item.get_closest_marker("jenkins"):
        return 1
    return 2 if item.get_closest_marker("slow") or item.get_closest_marker("notebook") else 3


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test file stays on one worker, so its module-scoped fixtures (a pipeline run, a
    server) start once; each whole notebook is a group of its own. Groups go out longest
    first. Each worker has its own temporary folders (run roots) and the OS picks its ports."""

    def is_notebook_run(item: pytest.Item) -> bool:
        return item.nodeid.startswith(NOTEBOOK_RUNS)

    files: dict[str, int] = {}  # a file's class is its heaviest test's: files stay together
    for item in items:
        path = item.nodeid.split("::")[0]
        files[path] = min(files.get(path, 3), _longest_first(item))
    items.sort(key=lambda item: files[item.nodeid.split("::")[0]])  # stable sort
    for item in items:  # only `--dist loadgroup` reads these; a plain run ignores them
        if is_notebook_run(item):
            group = item.nodeid
        elif marker := item.get_closest_marker("xdist_group"):
            # a module's own group: files that share a session fixture (one pipeline run
            # read by several files) name the same group and so share a worker
            group = marker.args[0] if marker.args else marker.kwargs["name"]
        else:
            group = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


# -- the process environment ------------------------------------------------------------------
def _restore_environ() -> Iterator[None]:
    """``Pipeline.context()`` exports tool settings (credentials too) into ``os.environ``, as
    the CLI must for boto3 and subprocesses; put the environment back after each module and
    each test, so one test's credentials never reach another."""
    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


restore_environ_per_module = pytest.fixture(scope="module", autouse=True)(_restore_environ)
restore_environ_per_test = pytest.fixture(autouse=True)(_restore_environ)
