"""Exercises: a change the learner makes that a scenario's pipeline must react to, and a
check that says whether the run shows it.

    check("sagemaker_byo", 1)     # in a notebook cell: "Exercise 1: done" or "not yet: ..."

A check reads the run directory only (``state.json``, ``progress.json``, the files the stages
wrote) and never changes the pipeline's state; it never raises on a fresh or half-run folder
(it says "not yet" and what is missing). The notebook's ``check`` also writes its verdict to
``<run_dir>/exercises.json`` (see ``record.py``), beside ``progress.json``, which is how the
instructor's room page learns who has done what. Solutions live apart, in
``mlops_helpers.solutions``; a notebook calls them only when its ``solutions`` parameter is
True (the tests do, ``make run`` does not).
"""

from __future__ import annotations

from pathlib import Path

from mlops_helpers.exercises.base import Exercise, RunView, Verdict
from mlops_helpers.exercises.catalog import all_exercises, exercise, exercises_for
from mlops_helpers.exercises.record import read_exercises, record_verdict

__all__ = [
    "all_exercises",
    "Exercise",
    "RunView",
    "Verdict",
    "check",
    "evaluate",
    "exercise",
    "exercises_for",
    "read_exercises",
    "record_verdict",
    "scenario_run_dir",
]


def evaluate(scenario: str, number: int, run_dir: Path) -> Verdict:
    """Exercise ``number`` of ``scenario`` judged on ``run_dir``: a pure function of the
    folder's files. A file that cannot be read yet is "not yet", never an error."""
    found = exercise(scenario, number)
    try:
        missing = found.check(RunView(Path(run_dir)))
    except Exception as exc:  # noqa: BLE001  (a half-written or foreign folder: not yet)
        missing = f"this run's state cannot be read yet ({type(exc).__name__}: {exc})"
    return Verdict(number, missing is None, missing or "")


def scenario_run_dir(scenario: str) -> Path:
    """The run folder a notebook of ``scenario`` uses with its settings (run root and
    attendee from the environment, ``.env`` or defaults); not created here."""
    from mlops_helpers.config import Settings

    settings = Settings.load(scenario, params={}, defaults={})
    return settings.run_root / f"{scenario}-{settings.attendee}"


def check(scenario: str, number: int, run_dir: Path | str | None = None) -> Verdict:
    """Say whether exercise ``number`` is done (print one line), and record the verdict for
    the room page. Changes nothing the pipeline reads."""
    folder = Path(run_dir) if run_dir is not None else scenario_run_dir(scenario)
    verdict = evaluate(scenario, number, folder)
    earlier = read_exercises(folder).get(str(number), {})
    line = verdict.line()
    if not verdict.done and earlier.get("done_at"):
        line = (
            f"Exercise {number}: done earlier; the run has moved on since "
            f"(now it would say: {verdict.hint})"
        )
    print(line)
    if folder.is_dir():  # a folder that does not exist yet is not made by a check
        record_verdict(folder, verdict)
    return verdict
