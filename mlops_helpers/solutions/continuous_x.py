"""Solutions of the continuous_x exercises."""

from __future__ import annotations

from typing import Any


def exercise_1(session: Any) -> None:
    session.refused("evaluate", min_accuracy=1.0)


def exercise_2(session: Any) -> None:
    session.run("revert", revert_environment="production")
