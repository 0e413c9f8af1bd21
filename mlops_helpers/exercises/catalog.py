"""Every scenario's exercises, in notebook order (each scenario's spec names its module)."""

from __future__ import annotations

from mlops_helpers.errors import UnknownNameError
from mlops_helpers.exercises.base import Exercise


def all_exercises() -> dict[str, list[Exercise]]:
    """``{scenario: its exercises}`` for every installed scenario that has some."""
    from mlops_helpers.scenarios import all_scenarios

    found = {name: spec.exercises() for name, spec in all_scenarios().items()}
    return {name: listed for name, listed in found.items() if listed}


def exercises_for(scenario: str) -> list[Exercise]:
    every = all_exercises()
    if scenario not in every:
        raise UnknownNameError("scenario with exercises", scenario, list(every))
    return every[scenario]


def exercise(scenario: str, number: int) -> Exercise:
    found = [e for e in exercises_for(scenario) if e.number == number]
    if not found:
        numbers = [str(e.number) for e in exercises_for(scenario)]
        raise UnknownNameError(f"{scenario} exercise", str(number), numbers)
    return found[0]
