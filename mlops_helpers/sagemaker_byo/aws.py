"""AWS backend: ECR image, S3 data and artifacts, SageMaker training job and endpoints.

Region, account, role, bucket and repository come from settings; nothing assumes a region.
Before a paid resource starts, the backend says what it will start (instance types and
counts). Credentials are checked (STS GetCallerIdentity) when the backend is made, before a
stage does any work. What a build creates is tracked, so ``cleanup`` (or any failure)
deletes it; the production endpoint is updated in place (UpdateEndpoint to the new endpoint
configuration) and is found by its name, so it outlives builds until ``teardown``. The
docker CLI sits behind ``DockerSeam``, which tests replace.
"""

from __future__ import annotations

import base64
import io
import json
import os
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
from mlops_helpers.sagemaker_byo.store import DATA_PREFIX, JOBS_PREFIX, model_digest
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
        # --provenance=false: BuildKit otherwise adds an attestation manifest and pushes an
        # OCI image index, which SageMaker refuses ("unsupported manifest media type")
        self._run(
            [
                "docker",
                "build",
                "--platform",
                "linux/amd64",
                "--provenance=false",
                "-t",
                image,
                str(context),
            ]
        )

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
            self.settings.aws_region
            or self.settings.require(
                "aws_default_region", why="the aws backend needs a region: set AWS_REGION"
            )
        )
        # a fake service on loopback in tests, a VPC endpoint or LocalStack for some users
        self.endpoint_url = self.settings.aws_endpoint_url or None
        self.poll_interval = self.settings.poll_interval
        self._clients: dict[str, Any] = {}
        self.session = self._session(boto3)
        self._account = self._caller_account()

    def _session(self, boto3: Any) -> Any:
        from botocore.exceptions import BotoCoreError

        keys = {
            "aws_access_key_id": self.settings.aws_access_key_id,
            "aws_secret_access_key": self.settings.aws_secret_access_key,
            "aws_session_token": self.settings.aws_session_token,
        }
        given = {k: v.reveal() for k, v in keys.items() if v}
        if not given and not self.settings.aws_profile:
            # nothing set: botocore would probe the instance metadata address (169.254.169.254)
            # for seconds; an instance role is used when this is set to false on purpose
            os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        try:
            if {"aws_access_key_id", "aws_secret_access_key"} <= set(given):
                return boto3.Session(region_name=self.region, **given)
            return boto3.Session(
                region_name=self.region, profile_name=self.settings.aws_profile or None
            )
        except BotoCoreError as exc:  # e.g. a profile that does not exist
            raise BackendUnavailable(f"aws backend: {exc}") from None

    def _caller_account(self) -> str:
        """Who we are, asked before any stage does work: no or bad credentials stop here."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.session.get_credentials() is None:
            raise BackendUnavailable(
                "aws backend: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment or .env, or run "
                "where an instance role provides them with AWS_EC2_METADATA_DISABLED=false"
            )
        try:
            identity = self.client("sts").get_caller_identity()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise BackendUnavailable(
                f"aws backend: AWS refused the credentials ({error.get('Code')}: "
                f"{error.get('Message')}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                f"(or AWS_PROFILE)"
            ) from None
        except BotoCoreError as exc:
            where = self.endpoint_url or f"the {self.region} STS endpoint"
            raise BackendUnavailable(
                f"aws backend: cannot check credentials at {where}: {exc}"
            ) from None
        return str(identity["Account"])

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    # -- names ----------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return str(self.settings.aws_account_id or self._account)

    @property
    def bucket(self) -> str:
        return str(self.settings.s3_bucket or self.settings.name(f"byo-artifacts-{self.account}"))

    @property
    def repository(self) -> str:
        return str(self.settings.ecr_repository or self.settings.name("byo-scikit"))

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
        source = container.container_dir(self.settings)
        problems = container.check(source)
        if problems:
            raise StageError(f"container source {source} is not ready: " + "; ".join(problems))
        tag = container.digest(source)[:12]
        uri = f"{self.ensure_repository()}:{tag}"
        if self.image_exists(tag):
            self.ctx.say(f"{uri} is already in ECR")
            return {
                "repository": self.repository,
                "tag": tag,
                "uri": uri,
                "pushed": False,
                "source": str(source),
            }
        docker = self.docker_factory()
        docker.build(source, uri)
        # Log in with an ECR authorization token (``aws ecr get-login`` no longer exists).
        auth = self.client("ecr").get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
        docker.login(auth["proxyEndpoint"], user, password)
        docker.push(uri)
        return {
            "repository": self.repository,
            "tag": tag,
            "uri": uri,
            "pushed": True,
            "source": str(source),
        }

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
        kind = self.settings.training_instance_type
        count = self.settings.training_instance_count
        max_runtime = self.settings.max_runtime
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
            "sagemaker_training_job",
            job_name,
            module=MODULE,
            region=self.region,
            name=job_name,
            endpoint_url=self.endpoint_url,
        )
        return {"job_name": job_name, "status": "InProgress", "instances": f"{count} x {kind}"}

    def model_digest(self, model_uri: str) -> str:
        """Read the job's model.tar.gz from S3 (a few kB) and hash the model inside it."""
        if not model_uri.startswith("s3://"):
            raise StageError(f"model artifact {model_uri} is not an s3:// URI")
        bucket, key = model_uri[len("s3://") :].split("/", 1)
        s3 = self.client("s3")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.ClientError as exc:
            raise StageError(f"model artifact {model_uri} cannot be read: {exc}") from None
        return model_digest(io.BytesIO(body))

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
        deployed = {
            lambdas.CHECK_TRAINING_STATUS: self.settings.lambda_check_training_status,
            lambdas.INVOKE_ENDPOINT: self.settings.lambda_invoke_endpoint,
        }
        function = deployed.get(name)
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
            self.ctx.tracker.add(
                kind,
                name,
                module=MODULE,
                region=self.region,
                name=name,
                endpoint_url=self.endpoint_url,
            )

    def deploy(
        self, env: str, job_name: str, model_uri: str, image: dict[str, Any], digest: str
    ) -> dict[str, Any]:
        sm = self.client("sagemaker")
        endpoint = resource_name(self.settings, env)
        model, config = job_name, f"{job_name}-{env}"
        kind = self.settings.endpoint_instance_type
        count = self.settings.endpoint_instance_count
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
        previous = current["EndpointConfigName"] if current else None
        if current is None:
            self.announce(f"endpoint {endpoint}: {count} x {kind}, billed until cleanup")
            sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        elif previous != config:
            # in place: the same endpoint name gets the new configuration; if the update
            # fails, SageMaker keeps serving the previous one
            self.announce(f"endpoint {endpoint} update: {count} x {kind}")
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        if env != "prod" or current is None:  # a new prod endpoint: this build's until handed
            self._track("sagemaker_endpoint", endpoint)
        answer = wait_until(
            lambda: sm.describe_endpoint(EndpointName=endpoint),
            what=f"endpoint {endpoint}",
            timeout=self.settings.endpoint_timeout,
            interval=self.poll_interval,
            until=lambda d: d["EndpointStatus"] == "InService",
            describe=lambda d: d["EndpointStatus"],
            fail_if=lambda d: (
                d.get("FailureReason") or None if d["EndpointStatus"] == "Failed" else None
            ),
        )
        if answer["EndpointConfigName"] != config:
            raise StageError(
                f"endpoint {endpoint} was not updated to {config} and still serves "
                f"{answer['EndpointConfigName']}: {answer.get('FailureReason') or 'no reason'}"
            )
        record = {
            "endpoint_name": endpoint,
            "endpoint_config": config,
            "model": model,
            "model_uri": model_uri,
            "model_digest": digest,
            "image": image["uri"],
            "region": self.region,
            "instances": f"{count} x {kind}",
        }
        if env == "prod":
            self._promote(record, previous)
        else:
            endpoints = self.ctx.state.get("endpoints", {})
            endpoints[env] = record
            self.ctx.state.update(endpoints=endpoints)
        return record

    def _promote(self, record: dict[str, Any], previous_config: str | None) -> None:
        """Production now serves ``record``: its endpoint, configuration and model leave this
        build's cleanup; what only the previous configuration used is deleted."""
        for kind, name in (
            ("sagemaker_endpoint", record["endpoint_name"]),
            ("sagemaker_endpoint_config", record["endpoint_config"]),
            ("sagemaker_model", record["model"]),
        ):
            self.ctx.tracker.forget(f"{kind}:{name}")
        self.production_state.update(endpoint=record)
        if previous_config and previous_config != record["endpoint_config"]:
            removed = self._delete_config_and_models(previous_config, keep={record["model"]})
            self.ctx.say(f"endpoint {record['endpoint_name']}: replaced {', '.join(removed)}")

    def _delete_config_and_models(self, config: str, keep: set[str]) -> list[str]:
        sm = self.client("sagemaker")
        described = self._exists(sm.describe_endpoint_config, EndpointConfigName=config)
        if described is None:
            return []
        models = {v["ModelName"] for v in described["ProductionVariants"]} - keep
        _delete(sm.delete_endpoint_config, EndpointConfigName=config)
        for model in sorted(models):
            _delete(sm.delete_model, ModelName=model)
        return [config, *sorted(models)]

    def check_endpoint(self, record: dict[str, Any], digest: str) -> None:
        """InService, on the configuration we deployed, whose model is the artifact we
        hashed. (Each answer's CustomAttributes then names the digest: the smoke test's
        Lambda checks that.)"""
        sm = self.client("sagemaker")
        name = record["endpoint_name"]
        current = self._exists(sm.describe_endpoint, EndpointName=name)
        if current is None or current["EndpointStatus"] != "InService":
            status = current["EndpointStatus"] if current else "missing"
            raise StageError(f"endpoint {name} is {status}; deploy it again")
        if current["EndpointConfigName"] != record["endpoint_config"]:
            raise StageError(
                f"endpoint {name} serves {current['EndpointConfigName']}, not "
                f"the deployed {record['endpoint_config']}"
            )
        model = sm.describe_model(ModelName=record["model"])
        if model["PrimaryContainer"].get("ModelDataUrl") != record["model_uri"]:
            raise StageError(f"model {record['model']} does not hold {record['model_uri']}")
        if record.get("model_digest") != digest:
            raise StageError(
                f"endpoint {name} was deployed with model "
                f"{str(record.get('model_digest'))[:12]}, not {digest[:12]}"
            )

    def teardown_production(self) -> list[str]:
        """Found by its name, so a teardown works from any workspace."""
        sm = self.client("sagemaker")
        name = resource_name(self.settings, "prod")
        current = self._exists(sm.describe_endpoint, EndpointName=name)
        removed: list[str] = []
        if current is not None:
            _delete(sm.delete_endpoint, EndpointName=name)
            removed.append(name)
            removed += self._delete_config_and_models(current["EndpointConfigName"], set())
        self.production_state.clear()
        return removed


# -- teardown (runs in the cleanup stage's own process) ---------------------------------
def _sagemaker(params: dict[str, Any]) -> Any:
    boto3 = require("boto3", "aws")
    return boto3.client(
        "sagemaker", region_name=params["region"], endpoint_url=params.get("endpoint_url")
    )


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
