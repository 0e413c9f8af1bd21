"""Every scenario's exercises, in notebook order."""

from __future__ import annotations

from mlops_helpers.errors import UnknownNameError
from mlops_helpers.exercises import (
    continuous_x,
    dvc_cml,
    sagemaker_byo,
    seldon_kind,
    watson_openscale,
)
from mlops_helpers.exercises.base import Exercise

EXERCISES: dict[str, list[Exercise]] = {
    module.EXERCISES[0].scenario: module.EXERCISES
    for module in (seldon_kind, sagemaker_byo, watson_openscale, dvc_cml, continuous_x)
}


def exercises_for(scenario: str) -> list[Exercise]:
    if scenario not in EXERCISES:
        raise UnknownNameError("scenario with exercises", scenario, list(EXERCISES))
    return EXERCISES[scenario]


def exercise(scenario: str, number: int) -> Exercise:
    found = [e for e in exercises_for(scenario) if e.number == number]
    if not found:
        numbers = [str(e.number) for e in exercises_for(scenario)]
        raise UnknownNameError(f"{scenario} exercise", str(number), numbers)
    return found[0]
