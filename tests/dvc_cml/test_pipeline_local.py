"""The whole local flow: gates that fail and pass, a report with DVC's numbers, bad input.

One working repo is built for the module (checkout + sync, ~6 s) and the tests go on from
there in file order, the way the CI stages follow each other.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.dvc_cml import project
from mlops_helpers.dvc_cml.layout import Layout
from mlops_helpers.dvc_cml.shell import tool
from mlops_helpers.dvc_cml.stages import PIPELINE, shell
from mlops_helpers.errors import ConfigError, GateFailed, StageError
from mlops_helpers.pipeline import StageContext
from tests.dvc_cml.conftest import make_context


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> StageContext:
    context = make_context(tmp_path_factory.mktemp("dvc_cml"), log=[])
    for stage in ("checkout", "remote_credentials", "sync_remotes"):
        PIPELINE.run_stage(stage, context)
    return context


def _run(ctx: StageContext, stage: str) -> dict[str, Any]:
    return PIPELINE.run_stage(stage, ctx)


def _snapshot(ctx: StageContext, listing: Callable[[Path], list[str]]) -> dict[str, Any]:
    layout = Layout(ctx.run_dir)
    sh = shell(ctx)
    return {"head": sh.git("rev-parse", "HEAD"), "branch": sh.git("branch", "--show-current"),
            "origin": listing(layout.origin_remote), "cache": listing(layout.cache_remote),
            "origin_git": sh.git("ls-remote", "origin")}


def test_checkout_builds_repo_origin_and_branch(ctx: StageContext) -> None:
    sh = shell(ctx)
    branch = ctx.state.get("branch")
    assert branch == "tune-c-test"
    assert sh.git("branch", "--show-current") == branch
    assert f"refs/heads/{branch}" in sh.git("ls-remote", "origin")
    assert project.known_remotes(sh) == ["origin", "jenkins_local"]
    assert (sh.cwd / "data" / "train.csv").is_file()  # restored by sync_remotes


def test_lock_gate_fails_naming_stale_stage_then_passes(ctx: StageContext) -> None:
    with pytest.raises(GateFailed, match=r"stale stages: train \(changed deps: params.yaml"):
        _run(ctx, "lock_check")
    assert _run(ctx, "reproduce")["ran"] == ["train", "evaluate"]
    assert _run(ctx, "lock_check") == {"stale_stages": []}


def test_lock_gate_sees_code_changes(ctx: StageContext) -> None:
    script = shell(ctx).cwd / "src" / "evaluate.py"
    original = script.read_text()
    script.write_text(original + "\n# a change without dvc repro\n")
    try:
        with pytest.raises(GateFailed, match=r"evaluate \(changed deps: src/evaluate.py"):
            _run(ctx, "lock_check")
    finally:
        script.write_text(original)
    assert _run(ctx, "lock_check") == {"stale_stages": []}


def test_pushed_gate_fails_naming_missing_output_then_passes(ctx: StageContext) -> None:
    with pytest.raises(GateFailed) as refused:
        _run(ctx, "pushed_check")
    message = str(refused.value)
    assert "remote 'origin' lacks model/model.pkl" in message
    assert "remote 'jenkins_local' lacks model/model.pkl" in message
    _run(ctx, "push")
    assert _run(ctx, "pushed_check") == {"remotes_clean": ["origin", "jenkins_local"]}


def test_report_holds_dvc_metrics_diff_numbers(ctx: StageContext) -> None:
    _run(ctx, "compare")
    report = _run(ctx, "report")
    text = Path(report["markdown"]).read_text()
    fresh = shell(ctx).dvc_json("metrics", "diff", "main", "--all")["metrics.json"]
    assert fresh["accuracy"]["old"] != fresh["log_loss"]["old"]
    for name, entry in fresh.items():
        row = re.search(rf"^\| {name} \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", text, re.M)
        assert row, f"no row for {name} in\n{text}"
        old, new, change = (float(cell) for cell in row.groups())
        assert old == pytest.approx(entry["old"], abs=5e-5)
        assert new == pytest.approx(entry["new"], abs=5e-5)
        assert change == pytest.approx(entry["diff"], abs=5e-5)
    assert "| train.C | 1.0000 | 0.0500 | -0.9500 |" in text
    assert Path(report["plot"]).stat().st_size > 10_000
    assert "not posted" not in report["posted"]


def test_commit_lock_pushes_branch_with_lock(ctx: StageContext) -> None:
    result = _run(ctx, "commit_lock")
    assert "dvc.lock" in result["committed"]
    sh = shell(ctx)
    remote_head = sh.git("ls-remote", "origin", f"refs/heads/{result['branch']}").split()[0]
    assert remote_head == result["commit"]
    assert sh.git("status", "--porcelain") == ""
    again = _run(ctx, "commit_lock")  # idempotent: nothing new to commit
    assert again["committed"] == [] and again["commit"] == result["commit"]


def test_broken_params_yaml_stops_cleanly_and_recovers(
        ctx: StageContext, remote_files: Callable[[Path], list[str]]) -> None:
    before = _snapshot(ctx, remote_files)
    params = shell(ctx).cwd / "params.yaml"
    good = params.read_text()
    params.write_text("train: [C: 1\n")
    try:
        with pytest.raises(ConfigError, match="params.yaml is not valid YAML"):
            _run(ctx, "reproduce")
        assert _snapshot(ctx, remote_files) == before
    finally:
        params.write_text(good)
    assert _run(ctx, "reproduce")["ran"] == []
    assert _run(ctx, "lock_check") == {"stale_stages": []}


def test_failing_pipeline_stage_stops_cleanly_and_recovers(
        ctx: StageContext, remote_files: Callable[[Path], list[str]]) -> None:
    before = _snapshot(ctx, remote_files)
    sh = shell(ctx)
    project.set_params(sh.cwd, {"train.C": -1})
    try:
        with pytest.raises(StageError, match=r"failed in stage 'train'") as failed:
            _run(ctx, "reproduce")
        assert "train.C must be positive" in str(failed.value)
        assert _snapshot(ctx, remote_files) == before
    finally:
        sh.git("checkout", "--", "params.yaml")
    _run(ctx, "reproduce")
    assert _run(ctx, "lock_check") == {"stale_stages": []}
    assert _run(ctx, "pushed_check") == {"remotes_clean": ["origin", "jenkins_local"]}


def test_missing_remote_stops_cleanly_and_recovers(
        ctx: StageContext, remote_files: Callable[[Path], list[str]]) -> None:
    before = _snapshot(ctx, remote_files)
    wrong = make_context(ctx.settings.run_root, log=[], cache_remote="ci_nowhere")
    with pytest.raises(StageError, match="remote 'ci_nowhere' is not configured.*known remotes: "
                                         "origin, jenkins_local"):
        PIPELINE.run_stage("sync_remotes", wrong)
    with pytest.raises(StageError, match="'ci_nowhere' is not configured"):
        PIPELINE.run_stage("pushed_check", wrong)
    assert _snapshot(ctx, remote_files) == before
    assert _run(ctx, "sync_remotes")["from_origin"]


def test_remote_folder_gone_stops_cleanly_and_recovers(
        ctx: StageContext, remote_files: Callable[[Path], list[str]]) -> None:
    sh = shell(ctx)
    before = _snapshot(ctx, remote_files)
    gone = ctx.run_dir / "gone"
    sh.dvc("remote", "modify", "--local", "origin", "url", str(gone))
    try:
        for stage in ("sync_remotes", "push", "pushed_check"):
            with pytest.raises(StageError, match=f"remote 'origin' points at {gone}, which "
                                                 "does not exist"):
                _run(ctx, stage)
    finally:
        sh.dvc("remote", "modify", "--local", "--unset", "origin", "url")
    assert not gone.exists()
    assert _snapshot(ctx, remote_files) == before
    assert _run(ctx, "sync_remotes")["from_origin"]
    assert _run(ctx, "pushed_check") == {"remotes_clean": ["origin", "jenkins_local"]}


def test_experiments_table(ctx: StageContext) -> None:
    from mlops_helpers.dvc_cml.experiments import experiment_table, run_experiments

    sh = shell(ctx)
    names = run_experiments(sh, [{"train.C": 10.0}])
    assert len(names) == 1
    table = experiment_table(sh)
    row = table[table["Experiment"] == names[0]]
    assert float(row["train.C"].iloc[0]) == 10.0
    assert 0 < float(row["accuracy"].iloc[0]) <= 1
    assert sh.git("status", "--porcelain") == ""  # the workspace is back on the branch


def test_cleanup_removes_credentials_and_keeps_results(ctx: StageContext) -> None:
    result = _run(ctx, "cleanup")
    assert "dvc_credentials:origin" in result["released"]
    layout = Layout(ctx.run_dir)
    assert (layout.repo / "dvc.lock").is_file() and (layout.report_dir / "report.md").is_file()
    assert json.loads((ctx.run_dir / "resources.json").read_text()) == []


def test_cli_lists_the_stages() -> None:
    done = subprocess.run([tool("mlops-workshop"), "dvc_cml", "stages"], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == PIPELINE.stage_names()
