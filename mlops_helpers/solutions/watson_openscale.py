"""Solutions of the watson_openscale exercises."""

from __future__ import annotations

from typing import Any


def exercise_1(session: Any) -> None:
    measured = {m["metric"]: m["value"] for m in session.result("evaluate")["metrics"]}
    session.refused("evaluate", min_accuracy=min(1.0, round(measured["accuracy"] + 0.05, 2)))


def exercise_2(session: Any) -> None:
    session.refused("promote")
