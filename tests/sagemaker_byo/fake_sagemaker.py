"""moto's SageMaker, completed on the service side where the pipeline needs more than it does.

moto keeps SageMaker's control plane (models, endpoint configurations, endpoints, jobs) but
does not implement UpdateEndpoint, marks every training job Completed without running it,
and answers InvokeEndpoint from a queue of canned answers. Here, inside the fake service and
never in the SDK (boto3 still talks HTTP to moto):

- ``UpdateEndpoint`` switches an endpoint to another endpoint configuration, as SageMaker
  does once the new one is InService;
- a training job runs the container's own ``train`` program (with the image's packages only,
  ``image_site``) on the job's S3 channels and hyperparameters, then leaves ``model.tar.gz``
  at the job's output, or ``Failed`` with the program's failure reason, as SageMaker does;
- ``InvokeEndpoint`` answers with the model the endpoint's configuration points at (its
  ``model.tar.gz`` from S3), and names its digest in ``CustomAttributes`` as our container's
  ``serve`` does.

Works for ``mock_aws()`` and for ``moto.server.ThreadedMotoServer`` in this process.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import joblib
import numpy as np
from moto.core.responses import ActionResult
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.models import SageMakerRuntimeBackend
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from mlops_helpers.sagemaker_byo import image_site
from mlops_helpers.sagemaker_byo.container import container_dir
from mlops_helpers.sagemaker_byo.store import model_digest

PARTITION = "aws"


def _s3(account_id: str) -> Any:
    return s3_backends[account_id][PARTITION]


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def update_endpoint(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name, config = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    described = backend.describe_endpoint_config(config)  # ValidationError when missing
    endpoint.endpoint_config_name = config
    endpoint.production_variants = endpoint._process_production_variants(
        described["ProductionVariants"]
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _run_train(
    job: Any,
    hyperparameters: dict[str, str],
    channels: list[dict[str, Any]],
    account_id: str,
    site: Path,
) -> None:
    """The container's ``train`` in an /opt/ml tree filled from the job's S3 channels."""
    s3 = _s3(account_id)
    with tempfile.TemporaryDirectory(prefix="fake-sagemaker-job-") as tmp:
        base = Path(tmp)
        config = base / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    c["ChannelName"]: {
                        "ContentType": c.get("ContentType", ""),
                        "TrainingInputMode": "File",
                    }
                    for c in channels
                }
            )
        )
        for channel in channels:
            bucket, prefix = _split(channel["DataSource"]["S3DataSource"]["S3Uri"])
            folder = base / "input" / "data" / channel["ChannelName"]
            folder.mkdir(parents=True)
            for key in list(s3.get_bucket(bucket).keys):
                if key.startswith(prefix) and not key.endswith("/"):
                    body = s3.get_object(bucket, key).value
                    (folder / key[len(prefix) :].replace("/", "_")).write_bytes(body)
        python, site_env = image_site.python(site)
        done = subprocess.run(
            [*python, str(container_dir() / "program" / "train")],
            env={"BYO_OPT_ML": str(base), "PATH": "/usr/bin:/bin", **site_env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        failure = base / "output" / "failure"
        if done.returncode != 0:
            job.training_job_status = job.secondary_status = "Failed"
            job.failure_reason = (
                failure.read_text().strip()
                if failure.is_file()
                else f"train exited with {done.returncode}"
            )
            return
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as tar:
            for path in sorted((base / "model").iterdir()):
                tar.add(path, arcname=path.name)
        bucket, key = _split(job.model_artifacts["S3ModelArtifacts"])
        s3.put_object(bucket, key, packed.getvalue())


def _running_jobs(original: Any, site: Path) -> Any:
    def create_training_job(self: SageMakerModelBackend, **kwargs: Any) -> Any:
        job = original(self, **kwargs)
        _run_train(
            job,
            kwargs.get("hyper_parameters") or {},
            kwargs.get("input_data_config") or [],
            self.account_id,
            site,
        )
        return job

    return create_training_job


class _Served:
    """What an endpoint answers with: the model its configuration points at."""

    _cache: dict[str, tuple[Any, str]] = {}

    @classmethod
    def model(cls, account_id: str, region: str, endpoint_name: str) -> tuple[Any, str]:
        from moto.sagemaker.models import sagemaker_backends

        sm = sagemaker_backends[account_id][region]
        endpoint = sm.endpoints[endpoint_name]
        config = sm.endpoint_configs[endpoint.endpoint_config_name]
        model = sm._models[config.production_variants[0]["ModelName"]]
        uri = model.primary_container["ModelDataUrl"]
        if uri not in cls._cache:
            bucket, key = _split(uri)
            data = _s3(account_id).get_object(bucket, key).value
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                member = tar.extractfile("model.joblib")
                assert member is not None
                estimator = joblib.load(io.BytesIO(member.read()))
            cls._cache[uri] = (estimator, model_digest(io.BytesIO(data)))
        return cls._cache[uri]


def invoke_endpoint(self: SageMakerRuntimeResponse) -> tuple[int, dict[str, str], str]:
    backend: SageMakerRuntimeBackend = self.sagemakerruntime_backend
    name = unquote(self.path.split("/")[2])  # POST /endpoints/<name>/invocations
    try:
        estimator, digest = _Served.model(backend.account_id, backend.region_name, name)
    except KeyError:
        return (
            400,
            {"Content-Type": "application/json"},
            json.dumps({"__type": "ValidationError", "message": f"Endpoint {name} not found."}),
        )
    body = self.body.decode() if isinstance(self.body, bytes) else str(self.body)
    rows = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
    labels = "\n".join(str(int(v)) for v in estimator.predict(rows)) + "\n"
    return (
        200,
        {
            "Content-Type": "text/csv",
            "x-Amzn-Invoked-Production-Variant": "AllTraffic",
            "X-Amzn-SageMaker-Custom-Attributes": f"model_digest={digest}",
        },
        labels,
    )


@contextmanager
def completed_sagemaker() -> Iterator[None]:
    """Install the three completions for the duration of the block."""
    packages = tempfile.TemporaryDirectory(prefix="fake-sagemaker-image-")
    site = image_site.link_site(
        container_dir() / "requirements.txt", Path(packages.name) / image_site.SITE_DIR
    )
    saved = {
        (SageMakerResponse, "update_endpoint"): getattr(SageMakerResponse, "update_endpoint", None),
        (SageMakerModelBackend, "create_training_job"): SageMakerModelBackend.create_training_job,
        (SageMakerRuntimeResponse, "invoke_endpoint"): SageMakerRuntimeResponse.invoke_endpoint,
    }
    SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.create_training_job = _running_jobs(  # type: ignore[method-assign]
        SageMakerModelBackend.create_training_job, site
    )
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    try:
        yield
    finally:
        _Served._cache.clear()
        packages.cleanup()
        for (owner, attribute), value in saved.items():
            if value is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, value)
