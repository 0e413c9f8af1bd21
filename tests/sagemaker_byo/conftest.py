from __future__ import annotations

import pytest

from tests.jenkins_runner import Origin, make_origin, project_tree


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    """A bare repository of the project as it is now, for the Jenkins-shaped builds of one
    test file (module scope: each file, pinned to its own xdist worker, makes its own)."""
    return make_origin(
        project_tree(), tmp_path_factory.mktemp("repo") / "origin.git", pr_branch=None
    )
