"""The pytest fixture that starts the OpenStack double on 127.0.0.1 and stops it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doubles.openstack.server import OpenStackDouble


@pytest.fixture
def openstack() -> Iterator[OpenStackDouble]:
    with OpenStackDouble() as double:
        yield double
