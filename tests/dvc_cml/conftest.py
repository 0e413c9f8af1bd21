from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dvc_cml.support import environment_restored


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "build_at(point): the point of the build a test of test_pipeline_local needs"
    )


@pytest.fixture(scope="module", autouse=True)
def _no_aws_environment() -> Iterator[None]:
    """No AWS variable from the machine in, none of ours (moto's keys) out of a module."""
    with environment_restored():
        yield
