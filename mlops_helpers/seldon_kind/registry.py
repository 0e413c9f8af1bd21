"""The scenario's backend registry: ``local`` and ``kind`` register themselves here."""

from __future__ import annotations

from typing import Any

from mlops_helpers.backends import BackendRegistry

REGISTRY: BackendRegistry[Any] = BackendRegistry("seldon_kind")
