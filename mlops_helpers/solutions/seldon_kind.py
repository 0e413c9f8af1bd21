"""Solutions of the seldon_kind exercises."""

from __future__ import annotations

from typing import Any

from mlops_helpers.exercises.seldon_kind import your_model_folders

BROKEN_TEST = """
def test_broken_on_purpose():
    # the workshop's exercise: a unit test that fails
    assert 1 + 1 == 3, "broken on purpose in the workshop exercise"
"""


def exercise_1(session: Any) -> None:
    folders = your_model_folders(session.ctx.run_dir)
    (folders / "news_classifier" / "tests" / "test_exercise.py").write_text(BROKEN_TEST)
    session.refused("unit_tests", models_dir=str(folders))


def exercise_2(session: Any) -> None:
    session.refused("open_production_change")
