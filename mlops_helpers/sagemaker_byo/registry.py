"""The scenario's backend registry: ``local`` and ``aws`` register themselves here."""

from __future__ import annotations

from typing import Any

from mlops_helpers.backends import BackendRegistry
from mlops_helpers.config import Settings

REGISTRY: BackendRegistry[Any] = BackendRegistry("sagemaker_byo")


def resource_name(settings: Settings, part: str) -> str:
    """``<name_prefix>-<part>-<attendee>``: jobs and endpoints of one run never collide."""
    return settings.name(f"{settings.name_prefix}-{part}")
