"""The two Lambda handlers: check_training_status against moto, invoke_endpoint against a
recording runtime client (the SDK boundary) and against moto's sagemaker-runtime."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from mlops_helpers.sagemaker_byo import lambdas

REGION = "ap-southeast-2"
check = lambdas.load(lambdas.CHECK_TRAINING_STATUS)
invoke = lambdas.load(lambdas.INVOKE_ENDPOINT)


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def create_job(sm: Any, name: str) -> None:
    sm.create_training_job(
        TrainingJobName=name,
        HyperParameters={"max_depth": "4"},
        AlgorithmSpecification={"TrainingImage": "img:1", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/byo",
        InputDataConfig=[
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/data/train/"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://b/training-jobs"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def test_check_training_status_reports_a_completed_job(sagemaker: Any) -> None:
    create_job(sagemaker, "byo-train-jd-1")
    # no client passed: the handler makes its own boto3 client, as on Lambda
    answer = check.handler({"TrainingJobName": "byo-train-jd-1"}, None)
    assert answer["TrainingJobStatus"] == "Completed"
    assert answer["ModelArtifacts"] == "s3://b/training-jobs/byo-train-jd-1/output/model.tar.gz"


def test_check_training_status_raises_for_a_failed_job() -> None:
    class FailedJob:
        def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
            return {"TrainingJobStatus": "Failed", "FailureReason": "max_depth=0 must be >= 1"}

    with pytest.raises(check.TrainingJobFailed, match="is Failed: max_depth=0"):
        check.handler({"TrainingJobName": "j"}, None, client=FailedJob())


def test_check_training_status_unknown_job_and_bad_event(sagemaker: Any) -> None:
    with pytest.raises(sagemaker.exceptions.ClientError, match="Could not find"):
        check.handler({"TrainingJobName": "nope"}, None, client=sagemaker)
    for event in ({}, {"TrainingJobName": ""}, ["x"]):
        with pytest.raises(check.BadEvent):
            check.handler(event, None)


class Runtime:
    """A sagemaker-runtime client that answers with given labels and records requests."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"Body": io.BytesIO(self.answer.encode())}


EVENT = {
    "EndpointName": "byo-test-jd",
    "Rows": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
    "Labels": [0, 2],
    "MinAccuracy": 0.9,
}


def test_invoke_endpoint_sends_csv_and_scores() -> None:
    runtime = Runtime("0\n2\n")
    answer = invoke.handler(EVENT, None, client=runtime)
    assert answer["Accuracy"] == 1.0 and answer["Predictions"] == [0, 2]
    sent = runtime.requests[0]
    assert sent["ContentType"] == "text/csv" and sent["EndpointName"] == "byo-test-jd"
    assert sent["Body"].decode().splitlines() == ["5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3"]


def test_invoke_endpoint_batches_rows() -> None:
    runtime = Runtime("0\n")
    invoke.handler({**EVENT, "Labels": [0, 0], "BatchSize": 1}, None, client=runtime)
    assert len(runtime.requests) == 2


def test_invoke_endpoint_raises_below_the_threshold() -> None:
    with pytest.raises(invoke.SmokeTestFailed, match=r"accuracy 0.5000 .* threshold 0.9"):
        invoke.handler(EVENT, None, client=Runtime("0\n0\n"))


@pytest.mark.parametrize("answer", ["0\n", "not a label\n", ""])
def test_invoke_endpoint_raises_on_a_wrong_answer(answer: str) -> None:
    with pytest.raises(invoke.EndpointError):
        invoke.handler(EVENT, None, client=Runtime(answer))


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"EndpointName": "e"},
        {**EVENT, "Rows": []},
        {**EVENT, "Labels": [0]},
        "text",
    ],
)
def test_invoke_endpoint_refuses_a_bad_event(event: Any) -> None:
    with pytest.raises(invoke.BadEvent):
        invoke.handler(event, None, client=Runtime(""))


def test_invoke_endpoint_with_moto_runtime(sagemaker: Any) -> None:
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"region": REGION, "results": [{"Body": "0\n2\n"}]},
        timeout=10,
    )
    answer = invoke.handler(EVENT, None)  # its own boto3 sagemaker-runtime client
    assert answer["Accuracy"] == 1.0


def test_errors_become_lambda_errors_with_the_type() -> None:
    with pytest.raises(lambdas.LambdaError) as caught:
        lambdas.run(lambdas.INVOKE_ENDPOINT, EVENT, Runtime("1\n1\n"))
    assert caught.value.error_type == "SmokeTestFailed"
    assert json.dumps(EVENT)  # the event is plain JSON, as the Lambda service sends it


# -- EventBridge: "SageMaker Training Job State Change" -------------------------------------
def state_change(status: str, **detail: Any) -> dict[str, Any]:
    """The event SageMaker sends to EventBridge (shape from the AWS EventBridge reference)."""
    name = "byo-train-jd-20260101-120000-000"
    return {
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-01-01T12:03:00Z",
        "region": REGION,
        "resources": [f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}"],
        "detail": {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}",
            "TrainingJobStatus": status,
            "SecondaryStatus": status,
            "HyperParameters": {"max_depth": "4"},
            "ModelArtifacts": {
                "S3ModelArtifacts": f"s3://byo-b/training-jobs/{name}/output/model.tar.gz"
            },
            **detail,
        },
    }


def test_check_training_status_reads_the_eventbridge_event() -> None:
    answer = check.handler(state_change("Completed"), None, client=object())  # no API call
    assert answer["TrainingJobStatus"] == "Completed"
    assert answer["ModelArtifacts"].endswith("/output/model.tar.gz")
    with pytest.raises(check.TrainingJobFailed, match="is Failed: AlgorithmError: OOM"):
        check.handler(state_change("Failed", FailureReason="AlgorithmError: OOM"), None)
    with pytest.raises(check.BadEvent, match="expected 'SageMaker Training Job State Change'"):
        check.handler({**state_change("Completed"), "detail-type": "EC2 Instance State"}, None)
    with pytest.raises(check.BadEvent, match="no TrainingJobName"):
        check.handler({**state_change("Completed"), "detail": {}}, None)


def test_invoke_endpoint_smoke_tests_on_a_completed_training_event(
    sagemaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = state_change("Completed")
    artifact = event["detail"]["ModelArtifacts"]["S3ModelArtifacts"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="byo-b", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(
        Bucket="byo-b", Key="data/test/test.csv", Body=b"0,5.1,3.5,1.4,0.2\n2,6.7,3,5.2,2.3\n"
    )
    sagemaker.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "img:1", "ModelDataUrl": artifact},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.t2.medium",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="byo-test-jd", EndpointConfigName="c")
    monkeypatch.setenv("SMOKE_TEST_ENDPOINT", "byo-test-jd")
    monkeypatch.setenv("SMOKE_TEST_DATA", "s3://byo-b/data/test/test.csv")
    monkeypatch.setenv("MIN_ACCURACY", "0.9")
    runtime = Runtime("0\n2\n")
    answer = invoke.handler(event, None, client=runtime)
    assert answer["Accuracy"] == 1.0 and answer["Rows"] == 2
    assert runtime.requests[0]["EndpointName"] == "byo-test-jd"
    # a job that is not Completed, or an endpoint that serves another model: nothing to test
    assert "is InProgress" in invoke.handler(state_change("InProgress"), None)["Skipped"]
    other = state_change("Completed", ModelArtifacts={"S3ModelArtifacts": "s3://byo-b/o.tar.gz"})
    assert "does not serve s3://byo-b/o.tar.gz" in invoke.handler(other, None)["Skipped"]
    monkeypatch.delenv("SMOKE_TEST_DATA")
    with pytest.raises(invoke.BadEvent, match="SMOKE_TEST_DATA"):
        invoke.handler(event, None)


class Attributed(Runtime):
    """A runtime whose answers name a model digest, as the container's serve does."""

    def __init__(self, answer: str, digest: str) -> None:
        super().__init__(answer)
        self.digest = digest

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        return {
            **super().invoke_endpoint(**request),
            "CustomAttributes": f"model_digest={self.digest}",
        }


def test_invoke_endpoint_checks_which_model_answered() -> None:
    event = {**EVENT, "ModelDigest": "a" * 64}
    assert invoke.handler(event, None, client=Attributed("0\n2\n", "a" * 64))["Accuracy"] == 1
    with pytest.raises(invoke.WrongModel, match="answered with model bbbbbbbbbbbb, not"):
        invoke.handler(event, None, client=Attributed("0\n2\n", "b" * 64))
    with pytest.raises(invoke.WrongModel, match="model None"):
        invoke.handler(event, None, client=Runtime("0\n2\n"))  # no attributes at all
