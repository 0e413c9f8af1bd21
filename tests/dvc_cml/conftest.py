from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dvc_cml.support import environment_restored


@pytest.fixture(scope="module", autouse=True)
def _no_aws_environment() -> Iterator[None]:
    """No AWS variable from the machine in, none of ours (moto's keys) out of a module."""
    with environment_restored():
        yield
