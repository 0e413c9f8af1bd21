"""A stateful double of IBM Cloud (IAM, watsonx.ai / WML v4, Watson OpenScale v2) on loopback.

The real ``ibm-watsonx-ai`` and ``ibm-watson-openscale`` clients talk to it over HTTPS, as
moto's server mode stands in for AWS. Start it with ``running_double`` (the tests' fixture
does); ``double.settings()`` are the workshop settings (and ``double.environ()`` the
environment variables) that point the ``ibm`` backend at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.doubles.ibm_cloud.openscale import OpenScaleState
from tests.doubles.ibm_cloud.openscale import routes as openscale_routes
from tests.doubles.ibm_cloud.server import DoubleServer, Router
from tests.doubles.ibm_cloud.wml import OLDER_RUNTIMES, PUBLISHED_RUNTIMES, Runtime, WmlState
from tests.doubles.ibm_cloud.wml import routes as wml_routes

__all__ = ["IbmCloudDouble", "OLDER_RUNTIMES", "PUBLISHED_RUNTIMES", "running_double"]


class IbmCloudDouble:
    def __init__(self, folder: Path, runtimes: list[Runtime] | None = None) -> None:
        self.api_key = f"double-{uuid.uuid4().hex}"
        self.instance_id = str(uuid.uuid4())
        self.wml = WmlState(api_key=self.api_key)
        if runtimes is not None:
            self.wml.runtimes = runtimes
        self.openscale = OpenScaleState(instance_id=self.instance_id, wml=self.wml)
        self.wml.on_scored = self.openscale.payload_logged
        router = Router()
        wml_routes(router, self.wml)
        openscale_routes(router, self.openscale)
        self.server = DoubleServer(router, self.wml.tokens, folder)
        self.wml.base_url = self.url = self.server.url
        self.ca_bundle = self.server.cert
        self.fail = self.server.fail
        self.delay = self.server.delay
        self.heal = self.server.heal

    @property
    def log(self) -> list[tuple[str, str, dict[str, str], Any]]:
        return self.server.log

    def calls(self, method: str, pattern: str) -> int:
        """How many requests of ``method`` had a path matching ``pattern``."""
        import re

        return sum(1 for m, path, _, _ in self.log if m == method and re.fullmatch(pattern, path))

    def settings(self) -> dict[str, Any]:
        crn = "crn:v1:double:public"
        return {
            "ibm_api_key": self.api_key,
            "ibm_wml_url": self.url,
            "ibm_platform_url": self.url,
            "ibm_iam_url": self.url,
            "ibm_openscale_url": self.url,
            "ibm_service_instance_id": self.instance_id,
            "ibm_ca_bundle": str(self.ca_bundle),
            "ibm_cos_crn": f"{crn}:cloud-object-storage:global::{self.instance_id}::",
            "ibm_wml_instance_crn": f"{crn}:pm-20:us-south::{self.instance_id}::",
        }

    def environ(self) -> dict[str, str]:
        """The same settings as the environment variables Jenkins would pass."""
        return {key.upper(): str(value) for key, value in self.settings().items()}

    def counts(self) -> dict[str, int]:
        """What exists now: the end state a rerun must not grow."""
        return {
            "spaces": len(self.wml.spaces),
            "models": len(self.wml.models),
            "deployments": len(self.wml.deployments),
            "service_providers": len(self.openscale.providers),
            "subscriptions": len(self.openscale.subscriptions),
            "monitor_instances": len(self.openscale.monitors),
        }


@contextmanager
def running_double(folder: Path, **options: Any) -> Iterator[IbmCloudDouble]:
    double = IbmCloudDouble(folder, **options)
    double.server.start()
    try:
        yield double
    finally:
        double.server.stop()
