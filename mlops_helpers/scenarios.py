"""Where each scenario's pipeline lives; imported only when a scenario is used."""

from __future__ import annotations

import importlib

from mlops_helpers import SCENARIOS
from mlops_helpers.errors import UnknownNameError
from mlops_helpers.pipeline import Pipeline


def load_pipeline(scenario: str) -> Pipeline:
    """The ``PIPELINE`` of ``mlops_helpers.<scenario>.stages``."""
    if scenario not in SCENARIOS:
        raise UnknownNameError("scenario", scenario, list(SCENARIOS))
    module = importlib.import_module(f"mlops_helpers.{scenario}.stages")
    pipeline: Pipeline = module.PIPELINE
    return pipeline


def available_scenarios() -> list[str]:
    """Scenarios whose stage module exists in this checkout."""
    from importlib.util import find_spec

    found = []
    for name in SCENARIOS:
        try:
            if find_spec(f"mlops_helpers.{name}.stages") is not None:
                found.append(name)
        except ModuleNotFoundError:
            continue
    return found
