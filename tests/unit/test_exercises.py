"""Exercises: every check reads a run folder and never raises; a fresh or half-written folder
is "not yet" with a hint; the check cell records its verdict for the room page; every
exercise has its solution. (The solutions themselves run in the notebook tests, which assert
each check says "not yet" before its solution and "done" after it.)"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from mlops_helpers.errors import UnknownNameError
from mlops_helpers.exercises import (
    Verdict,
    all_exercises,
    check,
    evaluate,
    read_exercises,
    record_verdict,
)
from mlops_helpers.progress import record_progress
from mlops_helpers.scenarios import scenario_names

EXERCISES = all_exercises()

ALL = [(s, e.number) for s, found in EXERCISES.items() for e in found]


def test_every_scenario_has_two_or_three_exercises_each_with_a_solution() -> None:
    assert set(EXERCISES) == set(scenario_names())
    for scenario, found in EXERCISES.items():
        assert 2 <= len(found) <= 3, scenario
        assert [e.number for e in found] == list(range(1, len(found) + 1))
        solutions = importlib.import_module(f"mlops_helpers.solutions.{scenario}")
        for item in found:
            assert callable(getattr(solutions, f"exercise_{item.number}")), (scenario, item)
            assert item.title and item.task.endswith(".") and item.minutes > 0


@pytest.mark.parametrize(("scenario", "number"), ALL)
def test_a_fresh_folder_is_not_yet_with_a_hint(scenario: str, number: int, tmp_path: Path) -> None:
    verdict = evaluate(scenario, number, tmp_path)
    assert not verdict.done and verdict.hint and "\n" not in verdict.hint


@pytest.mark.parametrize(("scenario", "number"), ALL)
def test_a_torn_or_foreign_folder_is_not_yet(scenario: str, number: int, tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"results": {"checkout": {"workspace": 3}}, "gate": [')
    (tmp_path / "progress.json").write_text("{torn")
    assert not evaluate(scenario, number, tmp_path).done
    (tmp_path / "state.json").write_text(json.dumps({"results": [], "gate": "x", "history": 1}))
    record_progress(tmp_path, "evaluate", "failed", "GateFailed: something else")
    assert not evaluate(scenario, number, tmp_path).done  # a failure, but not this one


def test_the_check_cell_prints_one_line_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"model_digest": "abc"}))
    before = state.read_text()
    verdict = check("sagemaker_byo", 1, tmp_path)
    assert capsys.readouterr().out.startswith("Exercise 1: not yet: the smoke test has not")
    assert state.read_text() == before  # the pipeline's state is never changed
    recorded = read_exercises(tmp_path)["1"]
    assert recorded["done"] is False and recorded["hint"] == verdict.hint
    assert recorded["done_at"] is None


def test_done_once_stays_recorded(tmp_path: Path) -> None:
    record_verdict(tmp_path, Verdict(2, True))
    first = read_exercises(tmp_path)["2"]["done_at"]
    record_verdict(tmp_path, Verdict(2, False, "the run moved on"))
    again = read_exercises(tmp_path)["2"]
    assert again["done"] is False and again["done_at"] == first
    (tmp_path / "exercises.json").write_text("{torn")
    assert read_exercises(tmp_path) == {}


def test_unknown_exercises_are_named_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="preflight"):
        evaluate("preflight", 1, tmp_path)
    with pytest.raises(UnknownNameError, match="sagemaker_byo exercise"):
        evaluate("sagemaker_byo", 9, tmp_path)


def test_the_instructors_guide_lists_every_exercise() -> None:
    from mlops_helpers.paths import project_root

    guide = (project_root() / "docs" / "instructor.md").read_text()
    for scenario, found in EXERCISES.items():
        for item in found:
            assert f"{item.number} · {item.title}" in guide, (scenario, item.title)
    assert "docs/instructor.md" in (project_root() / "README.md").read_text()


def test_a_folder_nobody_can_write_still_gets_its_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exercises.json").mkdir()  # the record cannot be replaced: not an error
    assert not check("dvc_cml", 1, tmp_path).done
    assert capsys.readouterr().out.startswith("Exercise 1: not yet: ")
    missing = tmp_path / "never-made"
    check("dvc_cml", 2, missing)
    assert not missing.exists()  # a check makes no folder
