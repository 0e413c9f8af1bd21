"""The scenario's backend registry, its environments and where its files live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_helpers.backends import BackendRegistry
from mlops_helpers.config import Settings
from mlops_helpers.continuous_x.spec import SCENARIO as SPEC
from mlops_helpers.paths import scenarios_dir

SCENARIO = "continuous_x"
REGISTRY: BackendRegistry[Any] = BackendRegistry(SCENARIO)
ENVIRONMENTS = ("staging", "canary", "production")
# the environments behind production's address (the canary router), and canary's default
# share of live traffic (the k8s canary Ingress says the same: canary-weight "10")
ROUTER_ENVIRONMENTS = ("production", "canary")
DEFAULT_WEIGHT: float = SPEC.setting("canary_weight").default
# promotion moves a version one step along this path
PROMOTION_SOURCE = {"canary": "staging", "production": "canary"}


def scenario_dir() -> Path:
    return scenarios_dir() / SCENARIO


def model_name(settings: Settings) -> str:
    """The registered model's name carries the attendee suffix."""
    return settings.name(str(settings.model_name))


# Argo WorkflowTemplates under workflows/, in lifecycle order; each names the CLI stages it
# carries out in its ``mlops-workshop/stages`` annotation (platform is Ansible's, cleanup
# Terraform's).
WORKFLOWS = (
    "train-model",
    "build-container-image",
    "deploy-container-image",
    "promote-model",
    "revert-model",
)
