"""The room page's data: stage progress as attendees' own runs record it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mlops_helpers.config import Secret
from mlops_helpers.pipeline import Pipeline, Stage
from mlops_helpers.progress import read_progress, read_run, record_progress, stage_progress
from mlops_helpers.room.grid import room_grid, room_view
from mlops_helpers.room.instructor import server_states
from mlops_helpers.scenarios import load_pipeline

STAGES = {"dvc_cml": ["checkout", "reproduce", "lock_check", "push"]}


def test_a_stage_records_running_then_done_or_failed(tmp_path: Path) -> None:
    with stage_progress(tmp_path, "checkout"):
        assert read_progress(tmp_path)["checkout"]["status"] == "running"
    assert read_progress(tmp_path)["checkout"]["status"] == "done"
    with pytest.raises(RuntimeError), stage_progress(tmp_path, "push", [Secret("hunter22")]):
        raise RuntimeError("remote refused token hunter22")
    failed = read_progress(tmp_path)["push"]
    assert failed["status"] == "failed"
    assert "remote refused" in failed["message"] and "hunter22" not in failed["message"]


def test_unknown_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stage status"):
        record_progress(tmp_path, "push", "maybe")


def test_the_grid_shows_each_attendee_and_each_stage(tmp_path: Path) -> None:
    homes = tmp_path / "homes"
    run_a = homes / "ana" / "runs" / "dvc_cml-ana"
    record_progress(run_a, "checkout", "done")
    record_progress(run_a, "reproduce", "done")
    record_progress(run_a, "lock_check", "failed", "GateFailed: dvc.lock is stale")
    (homes / "bo").mkdir(parents=True)  # signed in, nothing run yet
    (homes / "cy" / "runs" / "dvc_cml-cy").mkdir(parents=True)
    (homes / "cy" / "runs" / "dvc_cml-cy" / "progress.json").write_text("{torn")

    grid = room_grid(homes, STAGES)
    assert grid["attendees"] == ["ana", "bo", "cy"]
    ana = grid["rows"]["ana"]["dvc_cml"]
    assert [ana[s]["status"] for s in STAGES["dvc_cml"]] == [
        "done",
        "done",
        "failed",
        "not started",
    ]
    assert ana["lock_check"]["message"] == "GateFailed: dvc.lock is stale"
    for name in ("bo", "cy"):  # nothing run, or a file being written: not started
        assert {c["status"] for c in grid["rows"][name]["dvc_cml"].values()} == {"not started"}


# -- the page tells the truth: the current run only, server state, time in stage -------------


@pytest.mark.room
def test_the_first_stage_starts_a_new_run(tmp_path: Path) -> None:
    record_progress(tmp_path, "checkout", "done")
    record_progress(tmp_path, "reproduce", "done")
    record_progress(tmp_path, "push", "failed", "remote refused")
    first = read_run(tmp_path)["id"]
    record_progress(tmp_path, "reproduce", "done")  # a stage of the same run: kept
    assert read_run(tmp_path)["id"] == first and set(read_progress(tmp_path)) == {
        "checkout",
        "reproduce",
        "push",
    }
    with stage_progress(tmp_path, "checkout", new_run=True):  # a new run: the old one forgotten
        assert list(read_progress(tmp_path)) == ["checkout"]
        entry = read_progress(tmp_path)["checkout"]
        assert entry["status"] == "running" and entry["message"] == ""
        assert entry["at"] == pytest.approx(time.time(), abs=60)
    assert read_run(tmp_path)["id"] != first
    assert {s: r["status"] for s, r in read_progress(tmp_path).items()} == {"checkout": "done"}


@pytest.mark.room
def test_a_pipeline_run_starts_with_its_first_stage(run_root: Path) -> None:
    """Through Pipeline.run_stage: running the first stage again forgets the later stages of
    the previous run (two quick stages in a real pipeline, under a real scenario's settings)."""
    real = load_pipeline("watson_openscale")
    pipeline = Pipeline(
        real.scenario,
        [Stage("first", lambda ctx: {}, "starts a run"), Stage("second", lambda ctx: {}, "next")],
        real.backends,
        cleanup_stage=None,
    )
    ctx = pipeline.context(run_root=str(run_root), log=lambda _: None)
    pipeline.run_stage("first", ctx)
    pipeline.run_stage("second", ctx)
    before = read_run(ctx.run_dir)["id"]
    assert set(read_progress(ctx.run_dir)) == {"first", "second"}
    pipeline.run_stage("second", ctx)  # a later stage again: the same run
    assert read_run(ctx.run_dir)["id"] == before
    pipeline.run_stage("first", ctx)
    assert set(read_progress(ctx.run_dir)) == {"first"}
    assert read_run(ctx.run_dir)["id"] != before


def _grid_with(tmp_path: Path, name: str, stages: dict[str, tuple[str, float]]) -> dict:
    run = tmp_path / "homes" / name / "runs" / f"dvc_cml-{name}"
    for stage, (status, _) in stages.items():
        record_progress(run, stage, status, "GateFailed: stale" if status == "failed" else "")
    data = json.loads((run / "progress.json").read_text())
    for stage, (_, at) in stages.items():  # when each status was recorded
        data["stages"][stage]["at"] = at
    (run / "progress.json").write_text(json.dumps(data))
    return room_grid(tmp_path / "homes", STAGES)


@pytest.mark.room
def test_a_stage_running_while_its_server_is_down_is_interrupted(tmp_path: Path) -> None:
    now = time.time()
    grid = _grid_with(
        tmp_path, "ana", {"checkout": ("done", now - 30), "reproduce": ("running", now - 20)}
    )
    stopped = room_view(grid, {"ana": {"state": "stopped", "last_activity": now - 25}}, now)
    assert stopped["servers"]["ana"]["state"] == "stopped"
    assert stopped["rows"]["ana"]["dvc_cml"]["reproduce"]["status"] == "interrupted"
    assert [(h["attendee"], h["stage"], h["why"]) for h in stopped["help"]] == [
        ("ana", "reproduce", "interrupted")
    ]
    grid = _grid_with(
        tmp_path, "ana", {"checkout": ("done", now - 30), "reproduce": ("running", now - 20)}
    )
    running = room_view(grid, {"ana": {"state": "running", "last_activity": now}}, now)
    assert running["rows"]["ana"]["dvc_cml"]["reproduce"]["status"] == "running"
    assert running["rows"]["ana"]["dvc_cml"]["reproduce"]["at"] == now - 20  # time in stage
    assert running["help"] == []
    grid = _grid_with(
        tmp_path, "ana", {"checkout": ("done", now - 30), "reproduce": ("running", now - 20)}
    )
    unknown = room_view(grid, None, now)  # the hub did not answer: nothing is guessed
    assert unknown["servers"]["ana"]["state"] == "unknown" and unknown["help"] == []


@pytest.mark.room
def test_a_stage_running_too_long_is_stuck_and_a_failure_needs_help(tmp_path: Path) -> None:
    now = time.time()
    grid = _grid_with(
        tmp_path,
        "bo",
        {"checkout": ("done", now - 900), "reproduce": ("failed", now - 800)},
    )
    grid = _grid_with(tmp_path, "cy", {"checkout": ("running", now - 700)})
    view = room_view(grid, {"bo": {"state": "running"}, "cy": {"state": "running"}}, now, 600)
    assert view["rows"]["cy"]["dvc_cml"]["checkout"]["stuck"] is True
    assert [(h["attendee"], h["stage"], h["why"]) for h in view["help"]] == [
        ("bo", "reproduce", "failed"),
        ("cy", "checkout", "stuck"),
    ]
    assert view["help"][0]["message"] == "GateFailed: stale"
    assert "11 min" in view["help"][1]["message"]


@pytest.mark.room
def test_server_states_come_from_the_hub_answer() -> None:
    users = [
        {"name": "ana", "last_activity": "2026-12-04T15:00:00Z", "servers": {}},
        {
            "name": "bo",
            "servers": {
                "": {"ready": True, "pending": None, "last_activity": "2026-12-04T15:01:00.5Z"}
            },
        },
        {"name": "cy", "servers": {"": {"ready": False, "pending": "spawn"}}},
        {"name": "dan", "servers": {"": {"ready": False, "pending": "stop"}}},
    ]
    states = server_states(users)
    assert {n: s["state"] for n, s in states.items()} == {
        "ana": "stopped",
        "bo": "running",
        "cy": "starting",
        "dan": "stopping",
    }
    assert states["bo"]["last_activity"] - states["ana"]["last_activity"] == pytest.approx(60.5)


def test_the_grid_shows_the_exercises_each_attendee_has_done(tmp_path: Path) -> None:
    from mlops_helpers.exercises import Verdict, record_verdict

    homes = tmp_path / "homes"
    run_a = homes / "ana" / "runs" / "dvc_cml-ana"
    record_progress(run_a, "checkout", "done")
    record_verdict(run_a, Verdict(1, True))  # what ana's check cells recorded
    record_verdict(run_a, Verdict(2, False, "run report"))
    (homes / "bo").mkdir(parents=True)

    grid = room_grid(homes, STAGES)
    assert [e["number"] for e in grid["exercises"]["dvc_cml"]] == [1, 2]
    assert set(grid["exercises"]) == {"dvc_cml"}  # the scenarios on the page only
    ana = grid["exercises_done"]["ana"]["dvc_cml"]
    assert ana["1"] == {"done": True, "hint": ""}
    assert ana["2"] == {"done": False, "hint": "run report"}
    assert not any(e["done"] for e in grid["exercises_done"]["bo"]["dvc_cml"].values())

    record_verdict(run_a, Verdict(1, False, "a later exercise moved the run on"))
    again = room_grid(homes, STAGES)["exercises_done"]["ana"]["dvc_cml"]
    assert again["1"]["done"] is True  # done once, done on the page
