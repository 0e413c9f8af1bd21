"""seldon_kind: a unit test that breaks, and production that refuses the change."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_helpers.exercises.base import Exercise, RunView

YOUR_MODELS = "your-models"  # the learner's copy of the model folders, in the run folder


def your_model_folders(run_dir: Path) -> Path:
    """A copy of the scenario's model folders in the run folder, yours to change (made once;
    the checkout's own folders stay as they are)."""
    from mlops_helpers.paths import scenarios_dir

    copy = Path(run_dir) / YOUR_MODELS
    if not copy.is_dir():
        shutil.copytree(
            scenarios_dir() / "seldon_kind" / "models",
            copy,
            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
        )
    return copy


def broken_unit_test(run: RunView) -> str | None:
    if not (run.run_dir / YOUR_MODELS).is_dir():
        return "make your copy of the model folders first (your_model_folders in the cell)"
    if not run.refused("unit_tests", "unit tests failed"):
        return (
            "the unit_tests gate has not refused yet: break a test in your copy and run "
            "unit_tests with models_dir set to it"
        )
    if run.record("unit_tests").get("passed") is not False:
        return "the latest unit-test record is not a failure: run unit_tests on your copy again"
    return None


def production_refuses(run: RunView) -> str | None:
    if not run.record("approval"):
        return "nothing reached production yet: run the notebook's stages up to approve_production"
    if run.record("unit_tests").get("passed") is not False:
        return "do exercise 1 first: production can only refuse after a unit test failed"
    if not run.refused("open_production_change", "unit tests"):
        return (
            "no production change was refused yet: run open_production_change now that a "
            "unit test fails"
        )
    return None


EXERCISES = [
    Exercise(
        "seldon_kind",
        1,
        "Break a unit test",
        "In your own copy of the model folders, make one unit test fail, then run the "
        "unit_tests gate on that copy: it must refuse, naming the folder and its log.",
        10,
        broken_unit_test,
    ),
    Exercise(
        "seldon_kind",
        2,
        "Production refuses the change",
        "With that failure on record, try to open a production change: the gate re-checks the "
        "latest unit-test run and refuses, so production keeps what it serves.",
        5,
        production_refuses,
    ),
]
