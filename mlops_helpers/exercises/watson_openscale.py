"""watson_openscale: a bar the model misses, and promotion that holds."""

from __future__ import annotations

from typing import Any

from mlops_helpers.exercises.base import Exercise, RunView
from mlops_helpers.watson_openscale.spec import SCENARIO

DEFAULT_MIN_ACCURACY: float = SCENARIO.setting("min_accuracy").default  # the bar to raise


def _accuracy_limit(gate: dict[str, Any]) -> float | None:
    for threshold in gate.get("thresholds") or []:
        if isinstance(threshold, dict) and threshold.get("metric_id") == "accuracy":
            return float(threshold.get("value"))
    return None


def bar_too_high(run: RunView) -> str | None:
    gate = run.record("gate")
    if not gate or not run.result("feedback"):
        return "the quality monitor has not run yet: run the stages above, up to evaluate"
    if run.result("feedback").get("label_noise", 0) != 0:
        return "the latest feedback has wrong labels: log clean feedback first"
    limit = _accuracy_limit(gate)
    if gate.get("passed") is not False or limit is None or limit <= DEFAULT_MIN_ACCURACY:
        return (
            "run evaluate with a min_accuracy above what the model reaches on clean feedback: "
            "the gate has not refused that yet"
        )
    if not run.refused("evaluate", "quality monitor"):
        return "the latest evaluate did not stop the pipeline: run it again with the higher bar"
    return None


def promotion_holds(run: RunView) -> str | None:
    production = run.record("production")
    if not production:
        return "nothing is in production yet: run promote once while the gate passes"
    if run.record("gate").get("passed") is not False:
        return "do exercise 1 first: the latest quality gate verdict must be a failure"
    if not run.refused("promote", "quality gate failed"):
        return "promote has not refused yet: run promote now that the gate said no"
    return None


EXERCISES = [
    Exercise(
        "watson_openscale",
        1,
        "A bar the model misses",
        "With the clean feedback logged, evaluate again with min_accuracy above the accuracy "
        "the monitor measured: the same model and rows, and the gate says no because the "
        "bar moved (it is read when the gate runs).",
        8,
        bar_too_high,
    ),
    Exercise(
        "watson_openscale",
        2,
        "Promotion holds",
        "Now try to promote: promote reads the recorded verdict for this very version and "
        "refuses; production keeps the version it has.",
        5,
        promotion_holds,
    ),
]
