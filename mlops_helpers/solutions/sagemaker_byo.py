"""Solutions of the sagemaker_byo exercises."""

from __future__ import annotations

from typing import Any


def exercise_1(session: Any) -> None:
    reached = session.result("smoke_test")["accuracy"]
    session.refused("smoke_test", min_accuracy=min(1.0, round(reached + 0.05, 2)))


def exercise_2(session: Any) -> None:
    session.refused("deploy_prod")
