"""``mlops-workshop <scenario> reset`` (and a notebook's ``reset()``): stop what the scenario
runs and forget its state, so it starts over."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.cli import main


def test_reset_runs_the_cleanup_and_removes_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(tmp_path))
    monkeypatch.setenv("MLOPS_ATTENDEE", "rs")
    run_dir = tmp_path / "dvc_cml-rs"
    run_dir.mkdir()
    (run_dir / "state.json").write_text('{"results": {"checkout": {}}}')
    assert main(["dvc_cml", "reset"]) == 0
    out = capsys.readouterr().out
    assert "stage cleanup" in out and f"removed {run_dir}" in out
    assert not run_dir.exists()


def test_reset_checks_its_settings_like_any_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_RUN_ROOT", str(tmp_path))
    assert main(["dvc_cml", "reset", "-p", "nope", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown dvc_cml setting 'nope'")
