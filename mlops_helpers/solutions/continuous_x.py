"""Solutions of the continuous_x exercises."""

from __future__ import annotations

from typing import Any

WEAK = {"C": 0.001}  # so much regularisation that the model learns little


def exercise_1(session: Any) -> None:
    session.run("train", **WEAK)
    session.refused("evaluate", **WEAK)


def exercise_2(session: Any) -> None:
    session.run("revert", revert_environment="production")
