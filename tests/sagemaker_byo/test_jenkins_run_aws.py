"""The scenario's Jenkinsfile run the way Jenkins runs it on the aws backend, against moto's
server on loopback (one process per stage, the real boto3): see ``test_jenkins_run.py``.
The local backend's builds are there; this file holds the aws ones so each file stays short.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from mlops_helpers.sagemaker_byo import container
from tests.doubles.sagemaker import running_aws
from tests.jenkins_runner import Origin
from tests.sagemaker_byo.jenkins_builds import (
    ATTENDEE,
    REGION,
    assert_failed_smoke_test,
    assert_passed,
    build,
    state,
)

pytestmark = [pytest.mark.jenkins, pytest.mark.slow]


@pytest.fixture
def moto_server() -> Iterator[str]:
    """moto's server behind the SageMaker double: the URL every client is pointed at."""
    with running_aws() as endpoint:
        yield endpoint


def test_aws_backend_against_moto_keeps_one_production_endpoint(
    origin: Origin, tmp_path: Path, moto_server: str
) -> None:
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    agent = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_EC2_METADATA_DISABLED": "true",
        "MLOPS_POLL_INTERVAL": "0.1",
    }
    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=moto_server, **keys)
    sm = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_server, **keys)
    runtime = boto3.client(
        "sagemaker-runtime", region_name=REGION, endpoint_url=moto_server, **keys
    )
    repository = f"byo-scikit-{ATTENDEE}"
    ecr.create_repository(repositoryName=repository)
    ecr.put_image(
        repositoryName=repository,
        imageTag=container.digest(container.container_dir())[:12],
        imageManifest=json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            }
        ),
    )
    aws = {
        "BACKEND": "aws",
        "AWS_REGION": REGION,
        "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/byo-sagemaker",
    }
    workspace = tmp_path / "workspace"

    assert_passed(build(origin, workspace, 1, agent, **aws, MAX_DEPTH="4"))
    assert_passed(build(origin, workspace, 2, agent, **aws, MAX_DEPTH="2"))
    second = state(workspace, "state.json")
    job, digest = second["training_job"], second["model_digest"]
    assert_failed_smoke_test(build(origin, workspace, 3, agent, **aws, MAX_DEPTH="1"))

    # exactly one production endpoint, and it serves the second build's model
    endpoints = sm.list_endpoints()["Endpoints"]
    assert [e["EndpointName"] for e in endpoints] == [f"byo-prod-{ATTENDEE}"]
    prod = sm.describe_endpoint(EndpointName=f"byo-prod-{ATTENDEE}")
    assert prod["EndpointConfigName"] == f"{job}-prod"
    model = sm.describe_model(ModelName=job)["PrimaryContainer"]["ModelDataUrl"]
    assert model == second["model_uri"] and f"/{job}/output/model.tar.gz" in model
    answer = runtime.invoke_endpoint(
        EndpointName=f"byo-prod-{ATTENDEE}", ContentType="text/csv", Body=b"5.1,3.5,1.4,0.2\n"
    )
    assert answer["CustomAttributes"] == f"model_digest={digest}"
    # nothing of the other builds is left: one configuration, one model
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [
        f"{job}-prod"
    ]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [job]

    gone = build(origin, workspace, 4, agent, **aws, TEARDOWN=True)
    assert gone.result == "SUCCESS", gone.log[-3000:]
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
