"""The scenario's backend registry (``local`` and ``ibm`` register here) and its names."""

from __future__ import annotations

from typing import Any

from mlops_helpers.backends import BackendRegistry
from mlops_helpers.config import Settings

REGISTRY: BackendRegistry[Any] = BackendRegistry("watson_openscale")


def space_name(settings: Settings) -> str:
    """``ibm_space_name`` when set (a shared space), else ``wos-space-<attendee>``."""
    return str(settings.ibm_space_name or settings.name("wos-space"))


def model_name(settings: Settings, base: str) -> str:
    return settings.name(str(settings.model_name or base))


def deployment_name(settings: Settings) -> str:
    return settings.name("wos-deploy")
