"""The aws backend's call sequence against moto (S3, ECR, IAM, STS, SageMaker).

Only the docker CLI is replaced (by a recorder); every AWS call goes over HTTP to moto's
server, behind the SageMaker double (``tests/doubles/sagemaker.py``: UpdateEndpoint, jobs
that run ``train``, endpoints that answer with their model).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_helpers.errors import BackendUnavailable, GateFailed
from mlops_helpers.pipeline import StageContext
from mlops_helpers.sagemaker_byo.aws import AwsBackend
from mlops_helpers.sagemaker_byo.stages import BUILD_STAGES, PIPELINE
from tests.doubles.sagemaker import running_aws

REGION = "eu-west-2"  # deliberately not us-east-1
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


class RecordingDocker:
    calls: list[tuple[str, ...]] = []

    def build(self, context: Path, image: str) -> None:
        assert (context / "Dockerfile").is_file()
        self.calls.append(("build", image))

    def login(self, registry: str, username: str, password: str) -> None:
        self.calls.append(("login", registry, username, password))

    def push(self, image: str) -> None:
        self.calls.append(("push", image))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(AwsBackend, "docker_factory", RecordingDocker)
    RecordingDocker.calls = []
    with running_aws() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="byo-sagemaker",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        yield role


def context(make_settings, role: str, events: list[str], **params: Any) -> StageContext:
    settings = make_settings(
        "sagemaker_byo",
        backend="aws",
        aws_region=REGION,
        sagemaker_role_arn=role,
        poll_interval=0.01,
        **params,
    )
    ctx = PIPELINE.context(settings=settings, log=lambda m: events.append(f"say {m}"))

    def record(model: Any, **_: Any) -> None:
        events.append(f"call {model.service_model.service_name}.{model.name}")

    def keep(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        events.append(f"params {name} {json.dumps(params, default=str)}")

    ctx.backend.session.events.register("before-call.*.*", record)
    ctx.backend.session.events.register("provide-client-params.*.*", keep)
    return ctx


def position(events: list[str], text: str) -> int:
    return next(i for i, e in enumerate(events) if text in e)


# IAM action of an API call where it is not "<service>:<operation>" (the Service
# Authorization Reference's actions table for S3, Lambda and SageMaker Runtime)
IAM_ACTION = {
    "s3.HeadBucket": "s3:ListBucket",
    "s3.PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3.PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "sagemaker-runtime.InvokeEndpoint": "sagemaker:InvokeEndpoint",
    "lambda.Invoke": "lambda:InvokeFunction",
    "sts.GetCallerIdentity": None,  # needs no permission
}
# what the pipeline calls beyond this test's run: `docker push` (ECR's "Pushing an image"
# permissions), the deployed Lambdas, a failed job's log, a job stopped at cleanup
ALSO_CALLED = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "lambda:InvokeFunction",
    "logs:FilterLogEvents",
    "sagemaker:StopTrainingJob",
}


def pipeline_policy() -> list[dict[str, Any]]:
    from cfnlint.decode import decode

    from mlops_helpers.paths import project_root

    template, problems = decode(str(project_root() / "cloudformation" / "workshop-setup.yaml"))
    assert not problems
    resource = template["Resources"]["PipelinePolicy"]
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"
    return list(resource["Properties"]["PolicyDocument"]["Statement"])


def assert_policy_allows(calls: set[str]) -> None:
    """Every API call recorded (``service.Operation``) is an action the pipeline policy in
    cloudformation/workshop-setup.yaml allows."""
    from fnmatch import fnmatchcase

    statements = pipeline_policy()
    allowed = [
        action
        for s in statements
        if s["Effect"] == "Allow"
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    needed = {IAM_ACTION.get(c, c.replace(".", ":", 1)) for c in calls} | ALSO_CALLED
    needed.discard(None)
    missing = sorted(a for a in needed if not any(fnmatchcase(a, p) for p in allowed))
    assert not missing, f"the pipeline policy does not allow {missing}"
    # training and deploying pass the execution role: only to SageMaker
    passing = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passing and all(
        s["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
        and s["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
        for s in passing
    )


def test_full_pipeline_call_sequence_cleanup_and_update_in_place(aws: str, make_settings) -> None:
    events: list[str] = []
    # the cleanup handlers' clients come from boto3's default session, as do this test's
    # own checks: record that session's calls while a cleanup or teardown stage runs
    handlers: list[str] = []
    boto3.setup_default_session(region_name=REGION)
    boto3.DEFAULT_SESSION.events.register(
        "before-call.*.*",
        lambda model, **_: handlers.append(f"{model.service_model.service_name}.{model.name}"),
    )

    def releasing(stage: str, stage_ctx: StageContext) -> None:
        handlers.clear()
        PIPELINE.run_stage(stage, stage_ctx)
        called.update(handlers)

    called: set[str] = set()
    ctx = context(make_settings, aws, events)
    results = PIPELINE.run(ctx, BUILD_STAGES)
    assert results["smoke_test"]["accuracy"] >= 0.9
    assert results["smoke_test"]["model_digest"] == ctx.state.get("model_digest")

    # build: repository with scan on push, docker login through the authorization token
    ecr = boto3.client("ecr", region_name=REGION)
    repo = ecr.describe_repositories(repositoryNames=["byo-scikit-test"])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    image = ctx.state.get("image")["uri"]
    assert image.startswith(f"123456789012.dkr.ecr.{REGION}.amazonaws.com/byo-scikit-test:")
    assert [c[0] for c in RecordingDocker.calls] == ["build", "login", "push"]
    assert RecordingDocker.calls[1][2] == "AWS"
    # data in a private, versioned, encrypted bucket in the chosen region
    s3 = boto3.client("s3", region_name=REGION)
    bucket = "byo-artifacts-123456789012-test"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"][
        "BlockPublicPolicy"
    ]
    s3.head_object(Bucket=bucket, Key="data/train/train.csv")
    # the training job: our image, role and a maximum runtime
    sm = boto3.client("sagemaker", region_name=REGION)
    job = sm.describe_training_job(TrainingJobName=ctx.state.get("training_job"))
    assert job["AlgorithmSpecification"]["TrainingImage"] == image
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 600
    sent = next(e for e in events if e.startswith("params sagemaker.CreateTrainingJob"))
    assert '"max_depth": "4"' in sent  # moto does not keep hyperparameters: check the request
    assert job["RoleArn"] == aws
    # both endpoints InService; the cost was announced before each paid call
    names = sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"])
    assert names == ["byo-prod-test", "byo-test-test"]
    assert position(events, "will start (paid): training job") < events.index(
        "call sagemaker.CreateTrainingJob"
    )
    assert position(events, "byo-test-test: 1 x ml.t2.medium") < events.index(
        "call sagemaker.CreateEndpoint"
    )
    calls = [e for e in events if e.startswith("call sagemaker.Create")]
    assert calls == [
        "call sagemaker.CreateTrainingJob",
        "call sagemaker.CreateModel",
        "call sagemaker.CreateEndpointConfig",
        "call sagemaker.CreateEndpoint",
        "call sagemaker.CreateEndpointConfig",
        "call sagemaker.CreateEndpoint",
    ]
    assert "call ecr.GetAuthorizationToken" in events

    # cleanup ends the build: production (endpoint, its configuration, its model) stays
    releasing("cleanup", ctx)
    called |= {e.removeprefix("call ") for e in events if e.startswith("call ")}
    job = ctx.state.get("training_job")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["byo-prod-test"]
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [
        f"{job}-prod"
    ]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [job]
    assert ctx.tracker.list() == []

    # the next build's model replaces production in place: UpdateEndpoint, one configuration
    # (a failed build leaving production: the moto builds in test_jenkins_run_aws.py)
    events.clear()
    second = context(make_settings, aws, events, criterion="entropy")
    PIPELINE.run(second, BUILD_STAGES)
    releasing("cleanup", second)
    assert "call sagemaker.UpdateEndpoint" in events
    assert events.count("call sagemaker.CreateEndpoint") == 1  # only the test endpoint
    job = second.state.get("training_job")
    prod = sm.describe_endpoint(EndpointName="byo-prod-test")
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["byo-prod-test"]
    assert prod["EndpointConfigName"] == f"{job}-prod"
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [job]
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1
    # teardown removes production on purpose
    releasing("teardown", ctx)
    called |= {e.removeprefix("call ") for e in events if e.startswith("call ")}
    assert_policy_allows(called)
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []


def test_rebuild_of_a_pushed_image_skips_docker(aws: str, make_settings) -> None:
    ctx = context(make_settings, aws, [])
    first = PIPELINE.run_stage("build", ctx)
    boto3.client("ecr", region_name=REGION).put_image(
        repositoryName="byo-scikit-test",
        imageManifest=json.dumps({"schemaVersion": 2, "mediaType": MANIFEST}),
        imageTag=first["tag"],
    )
    RecordingDocker.calls = []
    again = PIPELINE.run_stage("build", ctx)
    assert again["uri"] == first["uri"] and again["pushed"] is False
    assert RecordingDocker.calls == []


def test_failed_smoke_test_deletes_the_test_endpoint_and_skips_prod(
    aws: str, make_settings
) -> None:
    ctx = context(make_settings, aws, [], max_depth=1)  # a stump: two species confused
    with pytest.raises(GateFailed, match=r"accuracy 0\.\d+ .* below the threshold 0\.9"):
        PIPELINE.run(ctx, BUILD_STAGES)
    sm = boto3.client("sagemaker", region_name=REGION)
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_models()["Models"] == []


def test_bad_hyperparameter_fails_the_job_with_its_reason(aws: str, make_settings) -> None:
    ctx = context(make_settings, aws, [], max_depth=0)
    with pytest.raises(GateFailed, match="max_depth=0 must be at least 1"):
        PIPELINE.run(ctx, BUILD_STAGES)
    assert boto3.client("sagemaker", region_name=REGION).list_endpoints()["Endpoints"] == []


def test_deployed_lambda_errors_fail_the_stage(aws: str, make_settings) -> None:
    """With lambda_<name> set, the stage invokes the deployed function and reads its error."""
    ctx = context(make_settings, aws, [], lambda_check_training_status="MLOps-Check-test")
    ctx.state.update(training_job="byo-train-test-1")

    class FailingLambda:
        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
            assert FunctionName == "MLOps-Check-test"
            assert json.loads(Payload) == {"TrainingJobName": "byo-train-test-1"}
            body = {"errorType": "TrainingJobFailed", "errorMessage": "job is Failed: OOM"}
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}

    ctx.backend._clients["lambda"] = FailingLambda()
    with pytest.raises(GateFailed, match="job is Failed: OOM"):
        PIPELINE.run_stage("train_status", ctx)


def test_region_is_required(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "MLOPS_AWS_REGION", "MLOPS_AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    ctx = PIPELINE.context(settings=make_settings("sagemaker_byo", backend="aws"))
    with pytest.raises(Exception, match="aws_default_region"):
        _ = ctx.backend


def test_no_credentials_is_one_line_before_any_work(
    make_settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "MLOPS_AWS_ACCESS_KEY_ID",
        "MLOPS_AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    ctx = PIPELINE.context(
        settings=make_settings("sagemaker_byo", backend="aws", aws_region=REGION)
    )
    with pytest.raises(BackendUnavailable, match="no AWS credentials found") as caught:
        PIPELINE.run_stage("train", ctx)
    assert "\n" not in str(caught.value)
    assert not (ctx.run_dir / "data").exists()  # refused before writing anything


def test_cleanup_tolerates_resources_already_deleted(aws: str, make_settings) -> None:
    ctx = context(make_settings, aws, [])
    PIPELINE.run(ctx, ["build", "train", "train_status", "deploy_test"])
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.delete_endpoint(EndpointName="byo-test-test")  # someone deleted it in the console
    released = PIPELINE.run_stage("cleanup", ctx)["released"]
    assert "sagemaker_endpoint:byo-test-test" in released
    assert sm.list_models()["Models"] == [] and ctx.tracker.list() == []


def test_the_image_is_built_as_a_single_manifest_sagemaker_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real docker CLI (a stand-in executable on PATH records its argv): BuildKit adds a
    provenance attestation by default (docker buildx build reference, "--provenance";
    Docker Engine 23+), which turns the pushed image into an OCI image index that SageMaker
    refuses; the build must switch it off and build for SageMaker's platform."""
    from mlops_helpers.sagemaker_byo import container
    from mlops_helpers.sagemaker_byo.aws import DockerSeam

    argv_file = tmp_path / "argv"
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv_file}\n')
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{docker.parent}:/usr/bin:/bin")
    DockerSeam().build(container.container_dir(), "123.dkr.ecr.eu-west-2.amazonaws.com/r:t")
    argv = argv_file.read_text().split("\n")
    assert argv[0] == "build" and "--provenance=false" in argv
    assert argv[argv.index("--platform") + 1] == "linux/amd64"
