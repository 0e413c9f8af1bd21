"""The whole local flow on a workspace: gates that fail and pass, a report with DVC's numbers,
dvc.lock pushed to the PR branch, bad input.

One sandbox (the learner's project with an open pull request) is built for the module and
checked out the way a Jenkins PR build is; the CI stages take it forward. Each test names the
point of the build it needs (``build_at``): the module's build, taken forward to that point,
or, when a test before has taken it past that point, a new sandbox of the test's own.
``dvc exp run``/``dvc exp show`` are checked by the notebook
(``notebooks/04_dvc_cml.ipynb``, run by ``tests/notebooks/test_run_notebooks.py``): its last
checks find each experiment's ``train.C`` in the table and a clean workspace afterwards.
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
from mlops_helpers.dvc_cml.workspace import SKIP_MARKER
from mlops_helpers.errors import ConfigError, GateFailed, StageError
from mlops_helpers.pipeline import StageContext
from tests.fixtures.dvc_cml import make_context, sandbox_context


def _checked_out(tmp_path_factory: pytest.TempPathFactory) -> StageContext:
    context = sandbox_context(tmp_path_factory.mktemp("dvc_cml"), log=[])
    for stage in ("checkout", "remote_credentials", "sync_remotes"):
        PIPELINE.run_stage(stage, context)
    return context


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> StageContext:
    """The module's build, checked out; tests take it forward."""
    return _checked_out(tmp_path_factory)


def _ran(ctx: StageContext, stage: str) -> bool:
    return stage in (ctx.state.get("results") or {})  # a stage's result: it ran and passed


# the points of a build a test can ask for, and the stages that reach each one
REPRODUCED = ("reproduce", "lock_check")
PUSHED = (*REPRODUCED, "push", "pushed_check")
REPORTED = (*PUSHED, "compare", "report")


@pytest.fixture
def ctx(
    request: pytest.FixtureRequest,
    build: StageContext,
    tmp_path_factory: pytest.TempPathFactory,
) -> StageContext:
    """The build at the test's ``build_at`` point: ``checked_out`` (no gate ran yet),
    ``reproduced`` (gates passed, nothing pushed), ``pushed`` (pushed and checked, at least),
    ``reported`` (and the report written); no mark: the build wherever it is."""
    marker = request.node.get_closest_marker("build_at")
    point = marker.args[0] if marker else None
    if point == "checked_out":
        return build if not _ran(build, "reproduce") else _checked_out(tmp_path_factory)
    if point == "reproduced":
        context = build if not _ran(build, "push") else _checked_out(tmp_path_factory)
        stages = REPRODUCED
    elif point in ("pushed", "reported"):
        context, stages = build, (PUSHED if point == "pushed" else REPORTED)
    else:
        return build
    for stage in stages:
        if not _ran(context, stage):
            PIPELINE.run_stage(stage, context)
    return context


def _with(ctx: StageContext, **changes: Any) -> StageContext:
    """The same build with some settings changed (the workspace and PR stay)."""
    params = {k: v for k, v in ctx.settings.params.items() if k not in ("run_root",)}
    return make_context(ctx.settings.run_root, log=[], **{**params, **changes})


def _run(ctx: StageContext, stage: str) -> dict[str, Any]:
    return PIPELINE.run_stage(stage, ctx)


def _snapshot(ctx: StageContext, listing: Callable[[Path], list[str]]) -> dict[str, Any]:
    layout = Layout(ctx.run_dir)
    sh = shell(ctx)
    return {
        "head": sh.git("rev-parse", "HEAD"),
        "branch": sh.git("branch", "--show-current"),
        "origin": listing(layout.origin_remote),
        "cache": listing(layout.ci_cache),
        "origin_git": sh.git("ls-remote", "origin"),
    }


def test_checkout_puts_the_workspace_on_the_pr_head(ctx: StageContext) -> None:
    sh = shell(ctx)
    assert sh.cwd == Layout(ctx.run_dir).sandbox_repo
    branch = ctx.settings.get("change_branch")
    assert branch == "tune-c-test"
    assert sh.git("branch", "--show-current") == branch
    assert sh.git("rev-parse", "HEAD") == sh.git("rev-parse", f"origin/{branch}")
    assert sh.git("rev-parse", "origin/main") == sh.git("rev-parse", "main")
    assert project.known_remotes(sh) == ["origin", "jenkins_local"]
    # the agent's cache remote is the agent's: .dvc/config.local, never committed
    assert "jenkins_local" in (sh.cwd / ".dvc" / "config.local").read_text()
    assert "jenkins_local" not in (sh.cwd / ".dvc" / "config").read_text()
    assert (sh.cwd / "data" / "train.csv").is_file()  # restored by sync_remotes


def test_a_build_without_workspace_or_with_a_plain_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match="no workspace: run under Jenkins .it sets WORKSPACE., or pass -p workspace PATH",
    ):
        PIPELINE.run_stage("checkout", make_context(tmp_path, log=[]))
    with pytest.raises(ConfigError, match=r"is not a git checkout: \.git is missing"):
        PIPELINE.run_stage("reproduce", make_context(tmp_path, log=[], workspace=str(tmp_path)))


@pytest.mark.build_at("checked_out")
def test_promoting_stages_refuse_before_any_gate_ran(ctx: StageContext) -> None:
    with pytest.raises(GateFailed, match="push refused: lock_check has not run"):
        _run(ctx, "push")
    with pytest.raises(GateFailed, match="commit_lock refused: lock_check has not run"):
        _run(ctx, "commit_lock")


@pytest.mark.build_at("checked_out")
def test_lock_gate_fails_naming_stale_stage_then_passes(ctx: StageContext) -> None:
    with pytest.raises(GateFailed, match=r"stale stages: train \(changed deps: params.yaml"):
        _run(ctx, "lock_check")
    assert _run(ctx, "reproduce")["ran"] == ["train", "evaluate"]
    assert _run(ctx, "lock_check") == {"stale_stages": []}


@pytest.mark.build_at("reproduced")
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


@pytest.mark.build_at("reproduced")
def test_pushed_gate_fails_naming_missing_output_then_passes(ctx: StageContext) -> None:
    with pytest.raises(GateFailed) as refused:
        _run(ctx, "pushed_check")
    message = str(refused.value)
    assert "remote 'origin' lacks model/model.pkl" in message
    assert "remote 'jenkins_local' lacks model/model.pkl" in message
    _run(ctx, "push")
    assert _run(ctx, "pushed_check") == {"remotes_clean": ["origin", "jenkins_local"]}


@pytest.mark.build_at("reproduced")
def test_report_holds_dvc_metrics_diff_numbers(ctx: StageContext) -> None:
    _run(ctx, "compare")
    report = _run(ctx, "report")
    text = Path(report["markdown"]).read_text()
    fresh = shell(ctx).dvc_json("metrics", "diff", "main", "--all")["metrics.json"]
    assert fresh["accuracy"]["old"] != fresh["log_loss"]["old"]
    for name, entry in fresh.items():
        row = re.search(rf"^\| {name} \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", text, re.M)
        assert row, f"no row for {name} in\n{text}"
        old, new, change = (float(cell) for cell in row.groups()[:3])
        better = "lower is better" if name == "log_loss" else "higher is better"
        assert better in row.group(4)
        assert old == pytest.approx(entry["old"], abs=5e-5)
        assert new == pytest.approx(entry["new"], abs=5e-5)
        assert change == pytest.approx(entry["diff"], abs=5e-5)
    assert "| train.C | 1.0000 | 0.0500 | -0.9500 |" in text
    assert Path(report["plot"]).stat().st_size > 10_000
    assert "not posted" not in report["posted"]


def test_report_cml_target_must_be_a_form_cml_accepts(ctx: StageContext) -> None:
    """Refused whatever the build has run so far (the setting is checked first)."""
    for bad in ("https://github.com/team/repo/pull/1", "pr/abc", "issue/3"):
        with pytest.raises(ConfigError, match="not a form CML accepts"):
            _run(_with(ctx, cml_target=bad), "report")


@pytest.mark.build_at("pushed")
def test_commit_lock_pushes_dvc_lock_to_the_pr_branch(ctx: StageContext) -> None:
    result = _run(ctx, "commit_lock")
    assert "dvc.lock" in result["committed"]
    sh = shell(ctx)
    remote_head = sh.git("ls-remote", "origin", f"refs/heads/{result['branch']}").split()[0]
    assert remote_head == result["commit"]
    assert SKIP_MARKER in sh.git("log", "-1", "--format=%s", result["commit"])
    assert sh.git("diff", "--name-only", f"{result['commit']}~1", result["commit"]).split() == [
        "dvc.lock",
        "metrics.json",
        "plots/confusion.csv",
    ]
    assert sh.git("status", "--porcelain") == ""
    again = _run(ctx, "commit_lock")  # idempotent: nothing new to commit
    assert again["committed"] == [] and again["commit"] == result["commit"]


@pytest.mark.build_at("reproduced")
def test_broken_params_yaml_stops_cleanly_and_recovers(
    ctx: StageContext, remote_files: Callable[[Path], list[str]]
) -> None:
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


@pytest.mark.build_at("pushed")
def test_failing_pipeline_stage_stops_cleanly_and_recovers(
    ctx: StageContext, remote_files: Callable[[Path], list[str]]
) -> None:
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


def test_commit_lock_refuses_on_a_branch_build(ctx: StageContext) -> None:
    branch_build = _with(ctx, change_id=None, change_target=None, change_branch=None)
    with pytest.raises(StageError, match="commit_lock runs on pull requests only"):
        _run(branch_build, "commit_lock")


def test_missing_remote_stops_cleanly_and_recovers(
    ctx: StageContext, remote_files: Callable[[Path], list[str]]
) -> None:
    before = _snapshot(ctx, remote_files)
    wrong = _with(ctx, cache_remote="ci_nowhere")
    with pytest.raises(
        StageError,
        match="remote 'ci_nowhere' is not configured.*known remotes: origin, jenkins_local",
    ):
        PIPELINE.run_stage("sync_remotes", wrong)
    with pytest.raises(StageError, match="'ci_nowhere' is not configured"):
        PIPELINE.run_stage("pushed_check", wrong)
    assert _snapshot(ctx, remote_files) == before
    assert _run(ctx, "sync_remotes")["from_origin"]


@pytest.mark.build_at("pushed")
def test_remote_folder_gone_stops_cleanly_and_recovers(
    ctx: StageContext, remote_files: Callable[[Path], list[str]]
) -> None:
    sh = shell(ctx)
    before = _snapshot(ctx, remote_files)
    gone = ctx.run_dir / "gone"
    sh.dvc("remote", "modify", "--local", "origin", "url", str(gone))
    try:
        for stage in ("sync_remotes", "push", "pushed_check"):
            with pytest.raises(
                StageError, match=f"remote 'origin' points at {gone}, which does not exist"
            ):
                _run(ctx, stage)
    finally:
        sh.dvc("remote", "modify", "--local", "--unset", "origin", "url")
    assert not gone.exists()
    assert _snapshot(ctx, remote_files) == before
    assert _run(ctx, "sync_remotes")["from_origin"]
    assert _run(ctx, "pushed_check") == {"remotes_clean": ["origin", "jenkins_local"]}


@pytest.mark.build_at("reported")
def test_cleanup_keeps_the_results(ctx: StageContext) -> None:
    assert _run(ctx, "cleanup") == {"released": []}
    layout = Layout(ctx.run_dir)
    assert (layout.sandbox_repo / "dvc.lock").is_file()
    assert (layout.report_dir / "report.md").is_file()
    resources = ctx.run_dir / "resources.json"
    assert not resources.is_file() or json.loads(resources.read_text()) == []


def test_cli_lists_the_stages() -> None:
    done = subprocess.run(
        [tool("mlops-workshop"), "dvc_cml", "stages"], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == PIPELINE.stage_names()
