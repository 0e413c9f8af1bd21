"""One solution per exercise (``mlops_helpers.exercises``), kept out of the learner's way.

A notebook calls ``solve(scenario, number, session)`` from an exercise cell only when its
``solutions`` parameter is True: the tests run every notebook that way, ``make run`` and the
learner do not. ``solve`` first prints what the exercise's check says before the solution (it
must be "not yet"), then does what the exercise asks with the notebook's own session.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlops_helpers.exercises import evaluate, exercise


def solve(scenario: str, number: int, session: Any) -> None:
    """Apply the solution of exercise ``number`` of ``scenario`` to ``session``'s run."""
    exercise(scenario, number)  # an unknown exercise: a clear error before anything runs
    before = evaluate(scenario, number, session.ctx.run_dir)
    print(f"before the solution: {before.line()}")
    module = importlib.import_module(f"mlops_helpers.solutions.{scenario}")
    getattr(module, f"exercise_{number}")(session)
