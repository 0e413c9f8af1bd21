"""The test session's hooks. Fixtures are defined once, in the plugin modules below (each
test file finds them by name; helpers are imported from those modules, never from a conftest).
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.fixtures.environment",
    "tests.fixtures.notebooks",
    "tests.fixtures.room",
    "tests.fixtures.seldon_kind",
    "tests.fixtures.continuous_x",
    "tests.fixtures.watson_openscale",
    "tests.fixtures.dvc_cml",
]


# -- running in parallel (`make test`: pytest -n auto --dist loadgroup --no-loadscope-reorder;
# without that flag xdist hands out the groups with the most tests first, whatever order this
# file gives them, and the one-test groups, the longest, went last: a 70 s tail) -----------
NOTEBOOK_RUNS = "tests/notebooks/test_run_notebooks.py"
WORKERS_PER_CORE = 2


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which answers one worker per core
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Two workers per core for ``-n auto``: most tests wait (on a server coming up, a
    subprocess, a notebook kernel) as much as they compute, so one worker per core left a
    fifth of the CPU idle (2 cores: 413 s with 2 workers, 357 s with 4; bench/bench_tests.py).
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return WORKERS_PER_CORE * (cores or 1)


def _longest_first(item: pytest.Item) -> int:
    """A rough size class of the test's group: xdist hands groups out in this order, so the
    longest start first and the run does not end waiting on one of them (measured: the room,
    the Jenkins-shaped builds and the notebooks are the longest)."""
    if item.get_closest_marker("room"):
        return 0
    if item.nodeid.startswith(NOTEBOOK_RUNS) or item.get_closest_marker("jenkins"):
        return 1
    return 2 if item.get_closest_marker("slow") or item.get_closest_marker("notebook") else 3


def _group(item: pytest.Item) -> str:
    """The xdist group the test runs in: each whole notebook a group of its own; files that
    share a session fixture (one pipeline run read by several files) name one group; any
    other file is its own group."""
    if item.nodeid.startswith(NOTEBOOK_RUNS):
        return item.nodeid
    if marker := item.get_closest_marker("xdist_group"):
        return marker.args[0] if marker.args else marker.kwargs["name"]
    return item.nodeid.split("::")[0]


def _last(item: pytest.Item) -> int:
    """0 for most tests; a test marked ``last_in_group(n)`` (n = 0 when not given) goes after
    them, and after those marked with a smaller n."""
    if item.get_closest_marker("first_in_group"):
        return -1
    marker = item.get_closest_marker("last_in_group")
    if marker is None:
        return 0
    return 1 + (marker.args[0] if marker.args else 0)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test file stays on one worker, so its module-scoped fixtures (a pipeline run, a
    server) start once. Groups go out longest first, each group's tests together; within that,
    the order is pytest-randomly's (it shuffles before this hook runs: the sort is stable),
    except that a test marked ``last_in_group`` (it stops what its group shares) goes after
    the group's others.
    Each worker has its own temporary folders (run roots) and the OS picks its ports."""
    groups = {id(item): _group(item) for item in items}
    size: dict[str, int] = {}  # a group's class is its heaviest test's: groups stay together
    for item in items:
        group = groups[id(item)]
        size[group] = min(size.get(group, 3), _longest_first(item))
    first: dict[str, int] = {}  # each group's tests together, where its first one came
    for index, item in enumerate(items):
        first.setdefault(groups[id(item)], index)
    items.sort(key=lambda item: (size[groups[id(item)]], first[groups[id(item)]], _last(item)))
    for item in items:  # only `--dist loadgroup` reads these; a plain run ignores them
        item.add_marker(pytest.mark.xdist_group(groups[id(item)]))
