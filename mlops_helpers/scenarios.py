"""The scenarios installed here, found through the ``mlops_workshop.scenarios`` entry points.

Each entry point names a ``Scenario`` (``mlops_helpers.seldon_kind.spec:SCENARIO``); the
workshop's five are registered in its own ``pyproject.toml``, and any installed distribution
can add one the same way. They are listed in notebook order. Loading a spec is cheap; a
scenario's pipeline is imported only when it is used.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from mlops_helpers.errors import UnknownNameError
from mlops_helpers.scenario import Scenario

if TYPE_CHECKING:
    from mlops_helpers.pipeline import Pipeline

ENTRY_POINT_GROUP = "mlops_workshop.scenarios"


@cache
def all_scenarios() -> dict[str, Scenario]:
    """Every registered scenario by name, in notebook order."""
    found: dict[str, Scenario] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        spec = entry.load()
        if not isinstance(spec, Scenario):
            raise TypeError(f"entry point {entry.value} is a {type(spec).__name__}, not a Scenario")
        if spec.name != entry.name:
            raise ValueError(f"entry point '{entry.name}' names scenario '{spec.name}'")
        found.setdefault(spec.name, spec)  # a checkout on sys.path twice lists it twice
    ordered = sorted(found.values(), key=lambda s: (s.notebook_path().name, s.name))
    return {spec.name: spec for spec in ordered}


def reload() -> None:
    """Forget the scenarios found so far (after installing one, or in a test)."""
    all_scenarios.cache_clear()


def scenario_names() -> list[str]:
    return list(all_scenarios())


def get_scenario(name: str) -> Scenario:
    try:
        return all_scenarios()[name]
    except KeyError:
        raise UnknownNameError("scenario", name, scenario_names()) from None


def find_scenario(name: str) -> Scenario | None:
    """The scenario called ``name``, or None (settings for the doctor or the CLI itself)."""
    return all_scenarios().get(name)


def load_pipeline(scenario: str) -> Pipeline:
    """The ``PIPELINE`` of a scenario's pipeline module."""
    return get_scenario(scenario).pipeline()
