"""A stateful double of IBM Cloud (IAM, watsonx.ai / WML v4, Watson OpenScale v2) on loopback.

The real ``ibm-watsonx-ai`` and ``ibm-watson-openscale`` clients talk to it over HTTPS, as
moto's server mode stands in for AWS. Start it with ``running_double`` (the tests' fixture
does); ``double.settings()`` are the workshop settings (and ``double.environ()`` the
environment variables) that point the ``ibm`` backend at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.doubles.ibm_cloud.server import IbmCloudDouble
from tests.doubles.ibm_cloud.wml import OLDER_RUNTIMES, PUBLISHED_RUNTIMES

__all__ = ["IbmCloudDouble", "OLDER_RUNTIMES", "PUBLISHED_RUNTIMES", "running_double"]


@contextmanager
def running_double(folder: Path, **options: Any) -> Iterator[IbmCloudDouble]:
    with IbmCloudDouble(folder, **options) as double:
        yield double
