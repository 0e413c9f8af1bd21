"""Test helpers of the dvc_cml scenario: moto's S3 server on loopback and a recording ``cml``.

moto checks signatures once ``INITIAL_NO_AUTH_ACTION_COUNT`` is 0, so a wrong secret is
refused the way AWS refuses it. ``cml`` is CML's real command line (``cml comment create``);
CML is not on PyPI and needs a hosted pull request, so tests put a small executable of that
name on PATH that checks its arguments as CML does and records them.
"""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_helpers.servers import free_port

BUCKET = "dvc-workshop"
AWS_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}

RECORDING_CML = r"""#!/usr/bin/env bash
# Stands in for CML's CLI: accepts what `cml comment create` accepts, records the call.
set -u
record=__RECORD__
if [ "${1:-}" != comment ] || [ "${2:-}" != create ]; then
    echo "cml: unknown command: $*" >&2; exit 1
fi
shift 2
target=auto; report=""
for arg in "$@"; do
    case "$arg" in
        --target=*) target="${arg#--target=}" ;;
        --publish|--native|--watch) ;;
        --*) echo "Unknown argument: $arg" >&2; exit 1 ;;
        *) report="$arg" ;;
    esac
done
if ! [[ "$target" =~ ^(pr|auto|pr/[0-9]+|commit/[0-9a-f]{7,40})$ ]]; then
    echo "Error: unsupported --target '$target' (pr, pr/<number>, commit/<sha>, auto)" >&2
    exit 1
fi
[ -n "${REPO_TOKEN:-}" ] || { echo "Error: REPO_TOKEN is not set" >&2; exit 1; }
[ -f "$report" ] || { echo "Error: no such file: $report" >&2; exit 1; }
printf '%s\t%s\t%s\n' "$target" "$report" "$(pwd)" >> "$record"
echo "https://forge.example.invalid/team/project/pull/${target#pr/}#comment-1"
"""


def install_recording_cml(bin_dir: Path, record: Path) -> Path:
    """Write the recording ``cml`` into ``bin_dir``; each call appends target, report, cwd."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    cml = bin_dir / "cml"
    cml.write_text(RECORDING_CML.replace("__RECORD__", json.dumps(str(record))))
    cml.chmod(cml.stat().st_mode | stat.S_IXUSR)
    return cml


def cml_calls(record: Path) -> list[dict[str, str]]:
    lines = record.read_text().splitlines() if record.is_file() else []
    return [dict(zip(("target", "report", "cwd"), line.split("\t"), strict=True)) for line in lines]


@contextmanager
def moto_s3() -> Iterator[dict[str, Any]]:
    """moto's S3 + IAM server on 127.0.0.1 with a bucket and a user's real access key."""
    import boto3
    from moto import settings as moto_settings
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boot = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "bootstrap",
        "aws_secret_access_key": "bootstrap",
    }
    before = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    try:
        # moto keeps its state per process, not per server: start from an empty account
        urllib.request.urlopen(
            urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30
        ).close()
        boto3.client("s3", **boot).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **boot)
        iam.create_user(UserName="ci")
        iam.put_user_policy(UserName="ci", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
        key = iam.create_access_key(UserName="ci")["AccessKey"]
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on signatures are checked
        yield {
            "url": url,
            "key_id": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
            "client": boto3.client(
                "s3",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id=key["AccessKeyId"],
                aws_secret_access_key=key["SecretAccessKey"],
            ),
        }
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        server.stop()


def s3_params(s3: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Settings of the s3 backend against the moto server."""
    return {
        "backend": "s3",
        "dvc_s3_url": f"s3://{BUCKET}/dvc",
        "aws_region": "us-east-1",
        "s3_endpoint_url": s3["url"],
        "aws_access_key_id": s3["key_id"],
        "aws_secret_access_key": s3["secret"],
        **extra,
    }


def bucket_keys(s3: dict[str, Any], prefix: str = "dvc/") -> list[str]:
    found = s3["client"].list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in found.get("Contents", []))


@contextmanager
def environment_restored(without: tuple[str, ...] = AWS_NAMES) -> Iterator[None]:
    """Run without ``without`` in ``os.environ`` and put the environment back afterwards:
    ``Pipeline.context`` exports tool settings (the moto credentials too) to the process."""
    saved = dict(os.environ)
    for name in without:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
