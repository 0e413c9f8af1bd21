"""dvc_cml under faults, one stage per process as Jenkins runs them.

After ``lock_check`` fails (params edited, lock tampered, lock deleted) ``push`` and
``commit_lock`` refuse in their own processes and nothing reaches origin; a pass does not
carry over to a workspace changed after it. The s3 backend checks its settings and
credentials before it creates anything, and ``--backend aws`` with no or bad credentials
fails with one line, no botocore traceback.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.dvc_cml import gate, project
from mlops_helpers.dvc_cml.layout import Layout, template_dir
from mlops_helpers.dvc_cml.shell import Shell, tool
from mlops_helpers.dvc_cml.stages import PIPELINE, create_sandbox, shell
from mlops_helpers.errors import ConfigError
from mlops_helpers.pipeline import StageContext
from tests.dvc_cml.support import AWS_NAMES, BUCKET, environment_restored, moto_s3
from tests.fixtures.dvc_cml import make_context, sandbox_context

pytestmark = pytest.mark.faults


def _job_env(ctx: StageContext, **extra: str) -> dict[str, str]:
    """What a Jenkins ``sh`` step of this PR build sees (no AWS credentials)."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_NAMES}
    env.update(
        MLOPS_RUN_ROOT=str(ctx.settings.run_root),
        MLOPS_ATTENDEE="test",
        WORKSPACE=str(ctx.settings.get("workspace")),
        CHANGE_ID=str(ctx.settings.get("change_id")),
        CHANGE_TARGET=str(ctx.settings.get("change_target")),
        CHANGE_BRANCH=str(ctx.settings.get("change_branch")),
        **extra,
    )
    return env


def _stage(env: dict[str, str], stage: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("mlops-workshop"), "dvc_cml", stage, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line_refusal(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert done.returncode != 0, done.stdout
    error = done.stderr.strip()
    assert len(error.splitlines()) == 1, error
    assert "Traceback" not in done.stderr and "botocore" not in done.stderr, done.stderr
    for text in expected:
        assert text in error, error
    return error


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StageContext]:
    """A PR build of the local sandbox, reproduced: the next CI step would be lock_check."""
    with environment_restored():  # contexts export tool settings to os.environ
        ctx = sandbox_context(tmp_path_factory.mktemp("dvc-faults"), log=[])
        for stage in ("checkout", "remote_credentials", "sync_remotes", "reproduce"):
            PIPELINE.run_stage(stage, ctx)
        yield ctx


@pytest.fixture
def origin_unchanged(build: StageContext) -> Iterator[None]:
    """Fails the test if the shared remote, the CI cache or origin's branches changed."""

    def snapshot() -> tuple[Any, ...]:
        layout = Layout(build.run_dir)
        files = [
            sorted(p.name for p in folder.rglob("*") if p.is_file())
            for folder in (layout.origin_remote, layout.ci_cache)
        ]
        return (*files, Shell(layout.origin_git).git("show-ref"))

    before = snapshot()
    yield
    assert snapshot() == before


def _lock_check_passes(ctx: StageContext) -> bool:
    """The gate run in this process (a stage process costs a DVC import); its result is
    recorded in the run directory, where the stage processes read it."""
    return PIPELINE.run_stage("lock_check", ctx) == {"stale_stages": []}


def _replace_last_md5(sh: Shell, value: str) -> None:
    lock = sh.cwd / "dvc.lock"
    text = lock.read_text()
    md5 = text.split("md5: ")[-1].split()[0]
    lock.write_text(text.replace(md5, value))


FAULTS: dict[str, Callable[[Shell], None]] = {
    "params edited": lambda sh: project.set_params(sh.cwd, {"train.C": 0.5}),
    # another output's hash: a well-formed lock that lies about the outputs
    "lock tampered": lambda sh: _replace_last_md5(sh, "d41d8cd98f00b204e9800998ecf8427e"),
    "lock corrupted": lambda sh: _replace_last_md5(sh, "0" * 32),  # YAML reads an integer
    "lock deleted": lambda sh: (sh.cwd / "dvc.lock").unlink(),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_failed_lock_check_stops_push_and_commit_lock_in_their_own_processes(
    build: StageContext, origin_unchanged: None, fault: str
) -> None:
    env, sh = _job_env(build), shell(build)
    # the pass is recorded in this process; the stages below read it in their own
    assert _lock_check_passes(build), "the reproduced workspace must pass"
    FAULTS[fault](sh)
    try:
        _one_line_refusal(_stage(env, "lock_check"), "gate failed:", "dvc.lock is not")
        _one_line_refusal(_stage(env, "push"), "push refused: lock_check failed for this dvc.lock")
        _one_line_refusal(_stage(env, "commit_lock"), "commit_lock refused:")
    finally:
        sh.git("checkout", "--", "params.yaml", "dvc.lock")
    assert _lock_check_passes(build)  # the gate still lets a good lock pass


def test_a_pass_does_not_cover_a_workspace_changed_after_it(
    build: StageContext, origin_unchanged: None
) -> None:
    env, sh = _job_env(build), shell(build)
    assert _lock_check_passes(build)
    project.set_params(sh.cwd, {"train.max_iter": 50})  # edited after the gate passed
    lock = gate.lock_digest(sh)[:12]
    try:
        error = _one_line_refusal(
            _stage(env, "push"), "push refused: the workspace changed since lock_check judged it"
        )
        assert error.count(lock) == 1 and "params.yaml" in error, error  # issue 30
        _one_line_refusal(
            _stage(env, "commit_lock"),
            "commit_lock refused: the workspace changed since lock_check",
        )
    finally:
        sh.git("checkout", "--", "params.yaml")


def test_a_pull_request_that_changes_nothing_is_one_clear_line(tmp_path: Path) -> None:
    """Issue 30: feature_c equal to main's value was a raw git error ("nothing to commit")."""
    main_c = project.read_params(template_dir())["train"]["C"]
    with environment_restored():
        ctx = make_context(tmp_path, log=[], feature_params=f"train.C={main_c}")
        with pytest.raises(ConfigError) as refused:
            create_sandbox(ctx)
    message = str(refused.value)
    assert "\n" not in message and "would change nothing" in message, message
    assert f"train.C={main_c}" in message


@pytest.fixture
def no_aws_environment() -> Iterator[None]:
    with environment_restored():
        yield


def test_s3_sandbox_checks_settings_and_credentials_before_creating_anything(
    tmp_path: Path, no_aws_environment: None
) -> None:
    cases = {
        "no credentials": {"backend": "s3", "dvc_s3_url": "s3://bucket/dvc"},
        "no remote URL": {
            "backend": "s3",
            "aws_access_key_id": "AKIAEXAMPLE",
            "aws_secret_access_key": "example-secret-0000",
        },
        "bad remote URL": {
            "backend": "s3",
            "dvc_s3_url": "https://bucket/dvc",
            "aws_access_key_id": "AKIAEXAMPLE",
            "aws_secret_access_key": "example-secret-0000",
        },
    }
    for case, params in cases.items():
        ctx = make_context(tmp_path / case.replace(" ", "-"), log=[], **params)
        with pytest.raises(ConfigError) as refused:
            create_sandbox(ctx)
        assert "\n" not in str(refused.value), case
        leftovers = sorted(p.name for p in ctx.run_dir.iterdir())
        assert leftovers == [], f"{case}: created {leftovers} before refusing"


def test_backend_aws_without_credentials_is_one_line(build: StageContext) -> None:
    env = _job_env(build)
    for stage in ("remote_credentials", "sync_remotes", "push", "pushed_check"):
        _one_line_refusal(
            _stage(env, stage, "--backend", "aws"), "error: the s3 backend has no AWS credentials"
        )


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def origin_on_s3(build: StageContext, s3: dict[str, Any]) -> Iterator[StageContext]:
    """The PR build's workspace with its shared ``origin`` remote moved to the S3 bucket
    (in .dvc/config.local, as ``dvc remote modify --local`` does); put back afterwards. The
    checks below need a workspace whose origin is on S3, not what the bucket holds."""
    sh = shell(build)
    sh.dvc("remote", "modify", "--local", "origin", "url", f"s3://{BUCKET}/dvc/faults")
    try:
        yield build
    finally:
        sh.dvc("remote", "modify", "--local", "--unset", "origin", "url")


def test_backend_aws_with_bad_credentials_is_one_line(
    origin_on_s3: StageContext, s3: dict[str, Any]
) -> None:
    base = _job_env(origin_on_s3, AWS_REGION="us-east-1", S3_ENDPOINT_URL=s3["url"])
    wrong_secret = {
        **base,
        "AWS_ACCESS_KEY_ID": s3["key_id"],
        "AWS_SECRET_ACCESS_KEY": "not-the-secret-0000",
    }
    unknown_key = {
        **base,
        "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000",
        "AWS_SECRET_ACCESS_KEY": "not-the-secret-0000",
    }
    for env, code in ((wrong_secret, "SignatureDoesNotMatch"), (unknown_key, "InvalidAccessKeyId")):
        for stage in ("remote_credentials", "sync_remotes"):
            error = _one_line_refusal(
                _stage(env, stage, "--backend", "aws"), "the remote refused the request", code
            )
            assert "not-the-secret-0000" not in error
    good = {**base, "AWS_ACCESS_KEY_ID": s3["key_id"], "AWS_SECRET_ACCESS_KEY": s3["secret"]}
    assert _stage(good, "remote_credentials", "--backend", "aws").returncode == 0
