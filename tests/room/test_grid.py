"""The room page's data: stage progress as attendees' own runs record it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.config import Secret
from mlops_helpers.progress import read_progress, record_progress, stage_progress
from mlops_helpers.room.grid import room_grid

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
