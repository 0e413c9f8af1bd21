"""AWS backend: ECR image, S3 data and artifacts, SageMaker training job and endpoints.

Region, account, role, bucket and repository come from settings; nothing assumes a region.
Before a paid resource starts, the backend says what it will start (instance types and
counts). Every model, endpoint configuration and endpoint is tracked, so ``cleanup`` (or any
failure) deletes them. The docker CLI sits behind ``DockerSeam``, which tests replace.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mlops_helpers.errors import BackendUnavailable, StageError
from mlops_helpers.extras import require
from mlops_helpers.pipeline import StageContext
from mlops_helpers.resources import teardown_handler
from mlops_helpers.sagemaker_byo import container, lambdas
from mlops_helpers.sagemaker_byo.base import ByoBackend
from mlops_helpers.sagemaker_byo.registry import REGISTRY, resource_name
from mlops_helpers.sagemaker_byo.store import DATA_PREFIX, JOBS_PREFIX
from mlops_helpers.waiting import wait_until

MODULE = "mlops_helpers.sagemaker_byo.aws"
NOT_FOUND = "Could not find"  # SageMaker's ValidationException text for a missing resource


class DockerSeam:
    """The three docker commands the build needs; the password goes through stdin."""

    def __init__(self) -> None:
        if shutil.which("docker") is None:
            raise BackendUnavailable(
                "the aws backend builds the image with docker, which is not on PATH here"
            )

    def _run(self, argv: list[str], stdin: str | None = None, timeout: float = 1800) -> None:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise StageError(f"{' '.join(argv[:2])} failed: {done.stderr[-2000:]}")

    def build(self, context: Path, image: str) -> None:
        self._run(["docker", "build", "--platform", "linux/amd64", "-t", image, str(context)])

    def login(self, registry: str, username: str, password: str) -> None:
        self._run(
            ["docker", "login", "--username", username, "--password-stdin", registry],
            stdin=password,
            timeout=120,
        )

    def push(self, image: str) -> None:
        self._run(["docker", "push", image])


def _missing(exc: Exception) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return NOT_FOUND in str(error.get("Message", "")) or error.get("Code") in (
        "RepositoryNotFoundException",
        "ImageNotFoundException",
        "404",
        "NoSuchBucket",
    )


@REGISTRY.register("aws")
class AwsBackend(ByoBackend):
    docker_factory: Any = DockerSeam  # tests put a recorder here

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        boto3 = require("boto3", "aws")
        self.region = str(
            self.settings.get("aws_region")
            or self.settings.require("aws_default_region", why="the aws backend needs a region")
        )
        self.session = boto3.Session(region_name=self.region)
        self.poll_interval = self.settings.get("poll_interval", 30.0, float)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    # -- names ----------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return str(
            self.settings.get("aws_account_id")
            or self.client("sts").get_caller_identity()["Account"]
        )

    @property
    def bucket(self) -> str:
        return str(
            self.settings.get("s3_bucket") or self.settings.name(f"byo-artifacts-{self.account}")
        )

    @property
    def repository(self) -> str:
        return str(self.settings.get("ecr_repository") or self.settings.name("byo-scikit"))

    def announce(self, what: str) -> None:
        """Say what paid resource starts next, before it starts."""
        self.ctx.say(f"[aws {self.region}] will start (paid): {what}")

    # -- build ----------------------------------------------------------------------------
    def ensure_repository(self) -> str:
        ecr = self.client("ecr")
        try:
            repo = ecr.describe_repositories(repositoryNames=[self.repository])["repositories"][0]
        except ecr.exceptions.RepositoryNotFoundException:
            repo = ecr.create_repository(
                repositoryName=self.repository, imageScanningConfiguration={"scanOnPush": True}
            )["repository"]
        return str(repo["repositoryUri"])

    def image_exists(self, tag: str) -> bool:
        ecr = self.client("ecr")
        try:
            ecr.describe_images(repositoryName=self.repository, imageIds=[{"imageTag": tag}])
        except ecr.exceptions.ImageNotFoundException:
            return False
        return True

    def build(self) -> dict[str, Any]:
        source = container.container_dir()
        problems = container.check(source)
        if problems:
            raise StageError(f"container source {source} is not ready: " + "; ".join(problems))
        tag = container.digest(source)[:12]
        uri = f"{self.ensure_repository()}:{tag}"
        if self.image_exists(tag):
            self.ctx.say(f"{uri} is already in ECR")
            return {"repository": self.repository, "tag": tag, "uri": uri, "pushed": False}
        docker = self.docker_factory()
        docker.build(source, uri)
        # Log in with an ECR authorization token (``aws ecr get-login`` no longer exists).
        auth = self.client("ecr").get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
        docker.login(auth["proxyEndpoint"], user, password)
        docker.push(uri)
        return {"repository": self.repository, "tag": tag, "uri": uri, "pushed": True}

    # -- data and training --------------------------------------------------------------
    def ensure_bucket(self) -> None:
        s3 = self.client("s3")
        try:
            s3.head_bucket(Bucket=self.bucket)
            return
        except s3.exceptions.ClientError as exc:
            if not _missing(exc):
                raise
        extra = (
            {}
            if self.region == "us-east-1"  # the one region that refuses a constraint
            else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        )
        s3.create_bucket(Bucket=self.bucket, **extra)
        s3.put_public_access_block(
            Bucket=self.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=self.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )

    def upload_data(self, files: dict[str, Path]) -> dict[str, str]:
        self.ensure_bucket()
        uris = {}
        for split, path in files.items():
            key = f"{DATA_PREFIX}/{split}/{path.name}"
            self.client("s3").upload_file(str(path), self.bucket, key)
            uris[split] = f"s3://{self.bucket}/{key}"
        return uris

    def start_training(
        self,
        job_name: str,
        image: dict[str, Any],
        hyperparameters: dict[str, str],
        data: dict[str, str],
    ) -> dict[str, Any]:
        kind = self.settings.get("training_instance_type", "ml.m5.large")
        count = self.settings.get("training_instance_count", 1, int)
        max_runtime = self.settings.get("max_runtime", 600, int)
        role = self.settings.require(
            "sagemaker_role_arn", why="SageMaker runs the job with this role"
        )
        self.announce(f"training job {job_name}: {count} x {kind}, at most {max_runtime}s")
        train_prefix = data["train"].rsplit("/", 1)[0] + "/"
        self.client("sagemaker").create_training_job(
            TrainingJobName=job_name,
            HyperParameters=hyperparameters,
            AlgorithmSpecification={"TrainingImage": image["uri"], "TrainingInputMode": "File"},
            RoleArn=role,
            InputDataConfig=[
                {
                    "ChannelName": "training",
                    "ContentType": "text/csv",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": train_prefix,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{self.bucket}/{JOBS_PREFIX}"},
            ResourceConfig={"InstanceType": kind, "InstanceCount": count, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": max_runtime},
        )
        self.ctx.tracker.add(
            "sagemaker_training_job", job_name, module=MODULE, region=self.region, name=job_name
        )
        return {"job_name": job_name, "status": "InProgress", "instances": f"{count} x {kind}"}

    def training_log(self, job_name: str) -> str:
        logs = self.client("logs")
        try:
            events = logs.filter_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job_name, limit=200
            )["events"]
        except logs.exceptions.ResourceNotFoundException:
            return "(no CloudWatch log yet)"
        return "\n".join(e["message"] for e in events)

    def sagemaker_client(self) -> Any:
        return self.client("sagemaker")

    def runtime_client(self) -> Any:
        return self.client("sagemaker-runtime")

    def run_lambda(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        """The deployed Lambda when ``lambda_<name>`` names it, else its code in-process."""
        function = self.settings.get(f"lambda_{name}")
        if not function:
            return super().run_lambda(name, event)
        answer = self.client("lambda").invoke(
            FunctionName=function, Payload=json.dumps(event).encode()
        )
        payload = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            payload = payload if isinstance(payload, dict) else {}
            raise lambdas.LambdaError(
                name,
                str(payload.get("errorType", "Error")),
                str(payload.get("errorMessage", payload)),
            )
        return dict(payload)

    # -- endpoints ----------------------------------------------------------------------
    def _exists(self, describe: Any, **name: str) -> dict[str, Any] | None:
        try:
            return dict(describe(**name))
        except self.client("sagemaker").exceptions.ClientError as exc:
            if _missing(exc):
                return None
            raise

    def _track(self, kind: str, name: str) -> None:
        if self.ctx.tracker.get(kind, name) is None:
            self.ctx.tracker.add(kind, name, module=MODULE, region=self.region, name=name)

    def deploy(
        self, env: str, job_name: str, model_uri: str, image: dict[str, Any]
    ) -> dict[str, Any]:
        sm = self.client("sagemaker")
        endpoint = resource_name(self.settings, env)
        model, config = job_name, f"{job_name}-{env}"
        kind = self.settings.get("endpoint_instance_type", "ml.t2.medium")
        count = self.settings.get("endpoint_instance_count", 1, int)
        if self._exists(sm.describe_model, ModelName=model) is None:
            sm.create_model(
                ModelName=model,
                ExecutionRoleArn=self.settings.require("sagemaker_role_arn"),
                PrimaryContainer={"Image": image["uri"], "ModelDataUrl": model_uri},
            )
        self._track("sagemaker_model", model)
        if self._exists(sm.describe_endpoint_config, EndpointConfigName=config) is None:
            sm.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": model,
                        "InitialInstanceCount": count,
                        "InstanceType": kind,
                    }
                ],
            )
        self._track("sagemaker_endpoint_config", config)
        current = self._exists(sm.describe_endpoint, EndpointName=endpoint)
        if current is None:
            self.announce(f"endpoint {endpoint}: {count} x {kind}, billed until cleanup")
            sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        elif current["EndpointConfigName"] != config:
            self.announce(f"endpoint {endpoint} update: {count} x {kind}")
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        self._track("sagemaker_endpoint", endpoint)
        wait_until(
            lambda: sm.describe_endpoint(EndpointName=endpoint),
            what=f"endpoint {endpoint}",
            timeout=self.settings.get("endpoint_timeout", 1800, float),
            interval=self.poll_interval,
            until=lambda d: d["EndpointStatus"] == "InService",
            describe=lambda d: d["EndpointStatus"],
            fail_if=lambda d: (
                d.get("FailureReason") or None if d["EndpointStatus"] == "Failed" else None
            ),
        )
        record = {
            "endpoint_name": endpoint,
            "endpoint_config": config,
            "model": model,
            "model_uri": model_uri,
            "image": image["uri"],
            "region": self.region,
            "instances": f"{count} x {kind}",
        }
        endpoints = self.ctx.state.get("endpoints", {})
        endpoints[env] = record
        self.ctx.state.update(endpoints=endpoints)
        return record


# -- teardown (runs in the cleanup stage's own process) ---------------------------------
def _sagemaker(params: dict[str, Any]) -> Any:
    boto3 = require("boto3", "aws")
    return boto3.client("sagemaker", region_name=params["region"])


def _delete(call: Any, **name: str) -> None:
    try:
        call(**name)
    except Exception as exc:
        if not _missing(exc):
            raise


@teardown_handler("sagemaker_endpoint")
def _teardown_endpoint(params: dict[str, Any]) -> None:
    _delete(_sagemaker(params).delete_endpoint, EndpointName=params["name"])


@teardown_handler("sagemaker_endpoint_config")
def _teardown_endpoint_config(params: dict[str, Any]) -> None:
    _delete(_sagemaker(params).delete_endpoint_config, EndpointConfigName=params["name"])


@teardown_handler("sagemaker_model")
def _teardown_model(params: dict[str, Any]) -> None:
    _delete(_sagemaker(params).delete_model, ModelName=params["name"])


@teardown_handler("sagemaker_training_job")
def _teardown_training_job(params: dict[str, Any]) -> None:
    """A job still running when the pipeline gives up is stopped (it bills per second)."""
    sm = _sagemaker(params)
    status = sm.describe_training_job(TrainingJobName=params["name"])["TrainingJobStatus"]
    if status == "InProgress":
        sm.stop_training_job(TrainingJobName=params["name"])
