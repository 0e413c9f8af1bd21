"""AWS for the sagemaker_byo scenario: moto's server, and a double of our own in front of it
for the three SageMaker calls moto does not complete.

moto keeps SageMaker's control plane (models, endpoint configurations, endpoints, jobs) and
every other service the pipeline calls (S3, ECR, IAM, STS, Lambda, CloudWatch Logs), but it
does not implement UpdateEndpoint, marks every training job Completed without running it,
and answers InvokeEndpoint from a queue of canned answers. ``SageMakerDouble`` listens where
the clients' ``AWS_ENDPOINT_URL`` points, forwards every request to moto's
``ThreadedMotoServer`` as it came, and answers these three itself, on moto's state read and
written through moto's own HTTP API (never its private functions; boto3 and the SageMaker
SDK still talk HTTP):

- ``UpdateEndpoint`` (docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint)
  switches an endpoint to another endpoint configuration, as SageMaker does once the new one
  is InService: here by deleting and re-creating the endpoint (same name, ARN and tags) on
  the new configuration; an unknown endpoint or configuration is a ``ValidationException``;
- ``CreateTrainingJob`` (API_CreateTrainingJob) is created in moto, then the container's own
  ``train`` program runs (with the image's packages only, ``image_site``) on the job's S3
  channels and hyperparameters in an ``/opt/ml`` tree (the layout of "Use your own training
  algorithms", docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo.html)
  and leaves ``model.tar.gz`` at the job's output; a failed ``train`` makes
  ``DescribeTrainingJob`` say ``Failed`` with the program's failure reason
  (``/opt/ml/output/failure``), as SageMaker does;
- ``InvokeEndpoint`` (API_runtime_InvokeEndpoint) answers with the model the endpoint's
  configuration points at (its ``model.tar.gz`` from S3), and names its digest in
  ``CustomAttributes`` as our container's ``serve`` does.

moto's state is reset (``POST /moto-api/reset``, its documented API) when the double stops.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tests.doubles.http_base import ApiError, HttpDouble, Reply, Request

HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "expect", "keep-alive"}
NOT_FORWARDED_BACK = HOP_BY_HOP | {"date", "server"}
JSON_11 = {"Content-Type": "application/x-amz-json-1.1"}


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


class MotoState:
    """What the double adds to moto's state, and its reads and writes of moto's, over HTTP."""

    def __init__(self, moto_url: str, site: Path) -> None:
        import boto3

        self.moto_url = moto_url
        self.site = site  # the image's packages, for the container's own programs
        self.failed: dict[str, str] = {}  # training job name -> its failure reason
        self.served: dict[str, tuple[Any, str]] = {}  # model URI -> (estimator, digest)
        # a session of its own: the clients' default session records the calls they make
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing"
        )

    def client(self, service: str, region: str) -> Any:
        return self._session.client(service, region_name=region, endpoint_url=self.moto_url)

    # -- UpdateEndpoint ---------------------------------------------------------------------
    def update_endpoint(self, region: str, name: str, config: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        sm = self.client("sagemaker", region)
        try:
            endpoint = sm.describe_endpoint(EndpointName=name)
        except ClientError:
            raise ApiError(
                400, "ValidationException", f"Could not find endpoint '{name}'."
            ) from None
        try:
            sm.describe_endpoint_config(EndpointConfigName=config)
        except ClientError as exc:
            raise ApiError(400, "ValidationException", str(exc)) from None
        tags = sm.list_tags(ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
        sm.delete_endpoint(EndpointName=name)
        created = sm.create_endpoint(EndpointName=name, EndpointConfigName=config, Tags=tags)
        return {"EndpointArn": created["EndpointArn"]}

    # -- training jobs ----------------------------------------------------------------------
    def run_training_job(self, region: str, spec: dict[str, Any]) -> None:
        """The container's ``train`` in an /opt/ml tree filled from the job's S3 channels;
        its model at the job's output, or the job failed with the program's reason."""
        name = spec["TrainingJobName"]
        job = self.client("sagemaker", region).describe_training_job(TrainingJobName=name)
        channels = spec.get("InputDataConfig") or []
        s3 = self.client("s3", region)
        with tempfile.TemporaryDirectory(prefix="fake-sagemaker-job-") as tmp:
            base = Path(tmp)
            config = base / "input" / "config"
            config.mkdir(parents=True)
            (config / "hyperparameters.json").write_text(
                json.dumps(spec.get("HyperParameters") or {})
            )
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
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for key in [o["Key"] for page in pages for o in page.get("Contents", [])]:
                    if not key.endswith("/"):
                        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                        (folder / key[len(prefix) :].replace("/", "_")).write_bytes(body)
            reason = self._train(base)
            if reason is not None:
                self.failed[name] = reason
                return
            packed = io.BytesIO()
            with tarfile.open(fileobj=packed, mode="w:gz") as tar:
                for path in sorted((base / "model").iterdir()):
                    tar.add(path, arcname=path.name)
            bucket, key = _split(job["ModelArtifacts"]["S3ModelArtifacts"])
            s3.put_object(Bucket=bucket, Key=key, Body=packed.getvalue())

    def _train(self, base: Path) -> str | None:
        """Run ``train`` on the tree at ``base``; its failure reason, or None."""
        from mlops_helpers.sagemaker_byo import image_site
        from mlops_helpers.sagemaker_byo.container import container_dir

        python, site_env = image_site.python(self.site)
        done = subprocess.run(
            [*python, str(container_dir() / "program" / "train")],
            env={"BYO_OPT_ML": str(base), "PATH": "/usr/bin:/bin", **site_env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode == 0:
            return None
        failure = base / "output" / "failure"
        return (
            failure.read_text().strip()
            if failure.is_file()
            else f"train exited with {done.returncode}"
        )

    def described_job(self, answer: dict[str, Any]) -> dict[str, Any]:
        """moto's DescribeTrainingJob answer, with the outcome of the job's real run."""
        reason = self.failed.get(answer.get("TrainingJobName", ""))
        if reason is not None:
            answer.update(TrainingJobStatus="Failed", SecondaryStatus="Failed")
            answer["FailureReason"] = reason
        return answer

    # -- InvokeEndpoint ---------------------------------------------------------------------
    def predict(self, region: str, endpoint_name: str, body: bytes) -> tuple[str, str]:
        """The endpoint's model's labels for CSV rows, and the model's digest."""
        import numpy as np

        estimator, digest = self._model(region, endpoint_name)
        rows = np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
        return "\n".join(str(int(v)) for v in estimator.predict(rows)) + "\n", digest

    def _model(self, region: str, endpoint_name: str) -> tuple[Any, str]:
        import joblib
        from botocore.exceptions import ClientError

        from mlops_helpers.sagemaker_byo.store import model_digest

        sm = self.client("sagemaker", region)
        try:
            config = sm.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
            variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
            model = sm.describe_model(ModelName=variants[0]["ModelName"])
        except ClientError:
            raise ApiError(400, "ValidationError", f"Endpoint {endpoint_name} not found.") from None
        uri = model["PrimaryContainer"]["ModelDataUrl"]
        if uri not in self.served:
            bucket, key = _split(uri)
            data = self.client("s3", region).get_object(Bucket=bucket, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                member = tar.extractfile("model.joblib")
                assert member is not None
                estimator = joblib.load(io.BytesIO(member.read()))
            self.served[uri] = (estimator, model_digest(io.BytesIO(data)))
        return self.served[uri]


class SageMakerDouble(HttpDouble):
    """moto's server behind our own front: three SageMaker calls answered here, the rest
    forwarded."""

    name = "sagemaker"

    def __init__(self, moto_url: str, site: Path) -> None:
        super().__init__()
        self.moto_url = moto_url
        self.state = MotoState(moto_url, site)
        self.route(
            "POST",
            r"/endpoints/(?P<name>[^/]+)/invocations",
            self._invoke,
            public=True,
        )
        self.route("POST", r"/", self._json_call, public=True)
        for method in ("GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"):
            self.route(method, r"/.*", self.forward, public=True)

    def _json_call(self, request: Request) -> Reply:
        """AWS's JSON protocol: the operation is the ``X-Amz-Target`` header."""
        target = request.headers.get("x-amz-target", "")
        region = _region(request)
        if target == "SageMaker.UpdateEndpoint":
            body = request.json() or {}
            answer = self.state.update_endpoint(
                region, str(body.get("EndpointName")), str(body.get("EndpointConfigName"))
            )
            return Reply(200, answer, JSON_11)
        reply = self.forward(request)
        if target == "SageMaker.CreateTrainingJob" and reply.status == 200:
            self.state.run_training_job(region, request.json() or {})
        if target == "SageMaker.DescribeTrainingJob" and reply.status == 200:
            reply.body = json.dumps(self.state.described_job(json.loads(reply.body))).encode()
        return reply

    def _invoke(self, request: Request, name: str) -> Reply:
        labels, digest = self.state.predict(_region(request), unquote(name), request.raw)
        return Reply(
            200,
            labels.encode(),
            {
                "Content-Type": "text/csv",
                "x-Amzn-Invoked-Production-Variant": "AllTraffic",
                "X-Amzn-SageMaker-Custom-Attributes": f"model_digest={digest}",
            },
        )

    def forward(self, request: Request) -> Reply:
        """The request to moto as it came; moto's answer as it came."""
        host, port = self.moto_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(request.raw))
        try:
            connection.request(request.method, request.target, request.raw, headers)
            answer = connection.getresponse()
            body = answer.read()
            back = {k: v for k, v in answer.getheaders() if k.lower() not in NOT_FORWARDED_BACK}
            if request.method == "HEAD" and answer.getheader("content-length"):
                back["Content-Length"] = str(answer.getheader("content-length"))
            return Reply(answer.status, body, back)
        finally:
            connection.close()

    def error_body(self, request: Request, error: ApiError) -> Any:
        return {"__type": error.code, "message": error.message}

    def stop(self) -> None:
        super().stop()
        reset = http.client.HTTPConnection(*self.moto_url.removeprefix("http://").split(":"))
        try:
            reset.request("POST", "/moto-api/reset")
            reset.getresponse().read()
        finally:
            reset.close()


def _region(request: Request) -> str:
    """The region in the request's SigV4 credential scope (``Credential=KEY/date/region/...``)."""
    found = re.search(r"Credential=[^/]+/\d+/([^/]+)/", request.headers.get("authorization", ""))
    if found is None:
        raise ApiError(400, "MissingAuthenticationToken", "the request is not signed (SigV4)")
    return found.group(1)


@contextmanager
def running_aws() -> Iterator[str]:
    """moto's server and the SageMaker double in front of it; yields the URL clients use
    (``AWS_ENDPOINT_URL``)."""
    from moto.server import ThreadedMotoServer

    from mlops_helpers.sagemaker_byo import image_site
    from mlops_helpers.sagemaker_byo.container import container_dir
    from mlops_helpers.servers import free_port

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with tempfile.TemporaryDirectory(prefix="fake-sagemaker-image-") as packages:
        site = image_site.link_site(
            container_dir() / "requirements.txt", Path(packages) / image_site.SITE_DIR
        )
        moto.start()
        try:
            with SageMakerDouble(f"http://127.0.0.1:{port}", site) as double:
                yield double.url
        finally:
            moto.stop()
