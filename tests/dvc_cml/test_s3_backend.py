"""The s3 backend against moto's S3 server on loopback: real bytes pushed and pulled by DVC.

moto checks signatures once ``INITIAL_NO_AUTH_ACTION_COUNT`` is 0, so a wrong secret is
refused the way AWS refuses it. The CML comment is tested with a stand-in ``cml`` program
that records its arguments (the real one needs a hosted pull request).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.dvc_cml.stages import PIPELINE, shell
from mlops_helpers.errors import ConfigError, StageError
from mlops_helpers.servers import free_port
from tests.dvc_cml.conftest import make_context

BUCKET = "dvc-workshop"
POLICY = {"Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    import boto3
    from moto import settings as moto_settings
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boot = {"endpoint_url": url, "region_name": "us-east-1",
            "aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
    boto3.client("s3", **boot).create_bucket(Bucket=BUCKET)
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="ci")
    iam.put_user_policy(UserName="ci", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    before = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on signatures are checked
    try:
        yield {"url": url, "key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"],
               "client": boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                                      aws_access_key_id=key["AccessKeyId"],
                                      aws_secret_access_key=key["SecretAccessKey"])}
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        server.stop()


def _ctx(root: Path, s3: dict[str, Any], **extra: Any) -> Any:
    params = {"backend": "s3", "dvc_s3_url": f"s3://{BUCKET}/dvc", "aws_region": "us-east-1",
              "s3_endpoint_url": s3["url"], "aws_access_key_id": s3["key_id"],
              "aws_secret_access_key": s3["secret"], **extra}
    return make_context(root, log=[], **params)


def _keys(s3: dict[str, Any]) -> list[str]:
    found = s3["client"].list_objects_v2(Bucket=BUCKET, Prefix="dvc/dvc-cml-test/")
    return [o["Key"] for o in found.get("Contents", [])]


@pytest.fixture(scope="module")
def flow(s3: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    ctx = _ctx(tmp_path_factory.mktemp("s3"), s3)
    for stage in ("checkout", "remote_credentials", "sync_remotes"):
        PIPELINE.run_stage(stage, ctx)
    return ctx


def test_checkout_pushes_main_outputs_to_s3(flow: Any, s3: dict[str, Any]) -> None:
    assert len(_keys(s3)) == 3  # train.csv, test.csv, model.pkl of main
    local = (shell(flow).cwd / ".dvc" / "config.local").read_text()
    assert "secret_access_key" in local and "endpointurl" in local
    committed = (shell(flow).cwd / ".dvc" / "config").read_text()
    assert "s3://dvc-workshop/dvc/dvc-cml-test" in committed
    assert s3["secret"] not in committed
    assert (shell(flow).cwd / "data" / "train.csv").is_file()  # pulled back from S3


def test_pull_request_flow_on_s3(flow: Any, s3: dict[str, Any]) -> None:
    for stage in ("reproduce", "lock_check", "push", "pushed_check", "compare"):
        PIPELINE.run_stage(stage, flow)
    assert len(_keys(s3)) == 4  # plus the pull request's model
    report = PIPELINE.run_stage("report", flow)
    assert "not posted: the cml CLI" in report["posted"] and "REPO_TOKEN" in report["posted"]


def test_wrong_secret_stops_cleanly_and_recovers(flow: Any, s3: dict[str, Any]) -> None:
    keys = _keys(s3)
    head = shell(flow).git("rev-parse", "HEAD")
    wrong = _ctx(flow.settings.run_root, s3, aws_secret_access_key="not-the-secret-0000")
    PIPELINE.run_stage("remote_credentials", wrong)
    with pytest.raises(StageError, match="status -c against remote 'origin' failed: the "
                                         "remote refused the request .SignatureDoesNot"):
        PIPELINE.run_stage("pushed_check", wrong)
    with pytest.raises(StageError, match="push to remote 'origin' failed: the remote refused"):
        PIPELINE.run_stage("push", wrong)
    (shell(flow).cwd / "model" / "model.pkl").unlink()
    assert _keys(s3) == keys and shell(flow).git("rev-parse", "HEAD") == head
    PIPELINE.run_stage("remote_credentials", flow)
    PIPELINE.run_stage("sync_remotes", flow)
    assert (shell(flow).cwd / "model" / "model.pkl").is_file()


def test_missing_credentials_are_named(flow: Any, s3: dict[str, Any]) -> None:
    ctx = make_context(flow.settings.run_root, log=[], backend="s3",
                       dvc_s3_url=f"s3://{BUCKET}/dvc", aws_access_key_id=s3["key_id"])
    env_secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if env_secret:
        pytest.skip("AWS_SECRET_ACCESS_KEY is set in this environment")
    with pytest.raises(ConfigError, match="aws_secret_access_key"):
        PIPELINE.run_stage("remote_credentials", ctx)


def test_report_posted_through_cml(flow: Any, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "cml-args.json"
    fake = tmp_path / "bin" / "cml"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n"
                    f"echo \"token=${{REPO_TOKEN:+set}}\" >> {record}\n"
                    "echo https://example.invalid/pr/1#comment\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    ctx = _ctx(flow.settings.run_root, {"url": flow.settings.get("s3_endpoint_url"),
                                        "key_id": "x", "secret": "y"},
               repo_token="ghp_example_token_value")
    result = PIPELINE.run_stage("report", ctx)
    args = record.read_text().splitlines()
    assert args[:3] == ["comment", "create", "--target=pr"]
    assert args[-2].endswith("report.md") and args[-1] == "token=set"
    assert "posted as a pull-request comment" in result["posted"]


def test_cleanup_removes_s3_credentials(flow: Any) -> None:
    PIPELINE.run_stage("cleanup", flow)
    local = shell(flow).cwd / ".dvc" / "config.local"
    text = local.read_text() if local.is_file() else ""
    assert "secret_access_key" not in text and "access_key_id" not in text
