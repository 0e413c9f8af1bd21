"""The s3 backend against moto's S3 server on loopback: real bytes pushed and pulled by DVC.

Credentials reach DVC only through the environment of the command that needs them; these
tests check they never land on disk, that a wrong secret is refused with one line, and that
the report goes out through ``cml comment create`` with a target CML accepts.

The module's flow is a branch build of ``main`` (run in this process, stage by stage): the
gates pass and the pushes go to S3 without training anything. The pull-request build on S3
(reproduce, the pull request's model pushed, the report posted) runs one stage per process,
as Jenkins runs it, in ``test_jenkins_run_s3.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.dvc_cml.layout import Layout
from mlops_helpers.dvc_cml.shell import Shell
from mlops_helpers.dvc_cml.stages import PIPELINE, create_sandbox, shell
from mlops_helpers.errors import ConfigError, StageError
from mlops_helpers.pipeline import StageContext
from tests.dvc_cml.support import (
    bucket_keys,
    cml_calls,
    install_recording_cml,
    moto_s3,
    s3_params,
)
from tests.fixtures.dvc_cml import make_context

PREFIX = "dvc/dvc-cml-test/"


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def flow(s3: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> StageContext:
    """The sandbox on S3, checked out on ``main`` as Jenkins does for a branch build."""
    root = tmp_path_factory.mktemp("s3")
    pull_request = create_sandbox(make_context(root, log=[], **s3_params(s3)))
    Shell(Path(pull_request["workspace"])).git("checkout", "-q", pull_request["change_target"])
    ctx = make_context(root, log=[], workspace=pull_request["workspace"], **s3_params(s3))
    for stage in ("checkout", "remote_credentials", "sync_remotes"):
        PIPELINE.run_stage(stage, ctx)
    return ctx


@pytest.fixture
def compared(flow: StageContext) -> StageContext:
    """The branch build's compare has run (by the test that checks it, or now)."""
    if "compare" not in (flow.state.get("results") or {}):
        for stage in ("lock_check", "push", "pushed_check", "compare"):
            PIPELINE.run_stage(stage, flow)
    return flow


def _with(ctx: StageContext, **changes: Any) -> StageContext:
    params = {k: v for k, v in ctx.settings.params.items() if k != "run_root"}
    return make_context(ctx.settings.run_root, log=[], **{**params, **changes})


def test_sandbox_pushed_main_to_s3_and_no_secret_is_on_disk(
    flow: StageContext, s3: dict[str, Any]
) -> None:
    assert len(bucket_keys(s3, PREFIX)) == 3  # train.csv, test.csv, model.pkl of main
    sh = shell(flow)
    assert "s3://dvc-workshop/dvc/dvc-cml-test" in (sh.cwd / ".dvc" / "config").read_text()
    assert (sh.cwd / "data" / "train.csv").is_file()  # pulled back from S3
    for path in flow.run_dir.rglob("*"):
        if path.is_file() and ".git" not in path.parts and "cache" not in path.parts:
            assert s3["secret"].encode() not in path.read_bytes(), path


def test_branch_build_flow_on_s3(flow: StageContext, s3: dict[str, Any]) -> None:
    keys = bucket_keys(s3, PREFIX)
    done = {
        stage: PIPELINE.run_stage(stage, flow)
        for stage in ("lock_check", "push", "pushed_check", "compare")
    }
    assert done["lock_check"] == {"stale_stages": []}
    assert done["pushed_check"] == {"remotes_clean": ["origin", "jenkins_local"]}
    assert bucket_keys(s3, PREFIX) == keys  # main was pushed already: nothing new
    report = PIPELINE.run_stage("report", flow)
    assert "not posted: the cml CLI" in report["posted"] and "REPO_TOKEN" in report["posted"]


def test_wrong_secret_stops_cleanly_with_one_line_and_recovers(
    compared: StageContext, s3: dict[str, Any]
) -> None:
    flow = compared  # lock_check has passed: push goes as far as the remote
    keys = bucket_keys(s3, PREFIX)
    head = shell(flow).git("rev-parse", "HEAD")
    wrong = _with(flow, aws_secret_access_key="not-the-secret-0000")
    for stage, what in (
        ("remote_credentials", "status -c against"),
        ("pushed_check", "status -c against"),
        ("push", "push to"),
    ):
        with pytest.raises(
            StageError,
            match=f"dvc {what} remote 'origin' failed: the remote "
            f"refused the request .SignatureDoesNotMatch",
        ) as refused:
            PIPELINE.run_stage(stage, wrong)
        assert "\n" not in str(refused.value) and "Traceback" not in str(refused.value)
    (shell(flow).cwd / "model" / "model.pkl").unlink()
    assert bucket_keys(s3, PREFIX) == keys and shell(flow).git("rev-parse", "HEAD") == head
    PIPELINE.run_stage("sync_remotes", flow)
    assert (shell(flow).cwd / "model" / "model.pkl").is_file()


def test_missing_credentials_are_named_before_any_work(
    flow: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)  # exported by earlier contexts
    params = {
        k: v
        for k, v in flow.settings.params.items()
        if k not in ("run_root", "aws_secret_access_key")
    }
    ctx = make_context(flow.settings.run_root, log=[], **params)
    for stage in ("remote_credentials", "sync_remotes", "push", "pushed_check"):
        with pytest.raises(
            ConfigError,
            match="the s3 backend has no AWS credentials: set "
            "AWS_ACCESS_KEY_ID . AWS_SECRET_ACCESS_KEY",
        ):
            PIPELINE.run_stage(stage, ctx)


def test_report_posted_through_cml_to_the_pull_request(
    compared: StageContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = compared
    record = tmp_path / "cml-calls.tsv"
    install_recording_cml(tmp_path / "bin", record)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    pull_request = {"change_id": "1", "change_target": "main", "change_branch": "tune-c-test"}
    result = PIPELINE.run_stage(
        "report", _with(flow, repo_token="ghp_example_token_value", **pull_request)
    )
    [call] = cml_calls(record)
    assert call["target"] == "pr/1"  # CHANGE_ID of the pull request
    assert call["report"] == str(Layout(flow.run_dir).report_dir / "report.md")
    assert call["cwd"] == str(shell(flow).cwd)  # CML reads the forge from the repo's remote
    assert result["posted"].startswith("report posted to pr/1: https://")
    chosen = _with(flow, repo_token="ghp_example_token_value", cml_target="commit/abcdef1")
    PIPELINE.run_stage("report", chosen)
    assert cml_calls(record)[-1]["target"] == "commit/abcdef1"


@pytest.mark.last_in_group  # it removes the credentials the other tests' remotes use
def test_cleanup_leaves_no_credential_behind(flow: StageContext, s3: dict[str, Any]) -> None:
    PIPELINE.run_stage("cleanup", flow)
    local = shell(flow).cwd / ".dvc" / "config.local"
    text = local.read_text() if local.is_file() else ""
    assert "secret_access_key" not in text and "access_key_id" not in text
    assert s3["secret"] not in text and s3["key_id"] not in text
