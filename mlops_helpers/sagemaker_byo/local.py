"""Local backend: the container's own ``train`` and ``serve`` under the SageMaker contract.

"Image" = the checked container source staged under its content digest; "S3" = a folder
laid out like the bucket; "endpoint" = ``serve`` on a free loopback port. Nothing is mocked:
the very programs the Dockerfile copies into the image run here as processes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError
from mlops_helpers.sagemaker_byo import container
from mlops_helpers.sagemaker_byo.base import ByoBackend
from mlops_helpers.sagemaker_byo.registry import REGISTRY, resource_name
from mlops_helpers.sagemaker_byo.store import DATA_PREFIX, LocalArtifactStore, model_key
from mlops_helpers.servers import ManagedServer, start_server


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LocalSageMaker:
    """``describe_training_job`` over the local jobs' status files."""

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
        path = self.jobs_dir / TrainingJobName / "status.json"
        if not path.is_file():
            raise StageError(f"training job {TrainingJobName} does not exist")
        return json.loads(path.read_text())


class LocalRuntime:
    """``invoke_endpoint`` as an HTTP POST to the endpoint's local ``/invocations``."""

    def __init__(self, endpoints: dict[str, dict[str, Any]]) -> None:
        self.urls = {e["endpoint_name"]: e["url"] for e in endpoints.values()}

    def invoke_endpoint(
        self,
        EndpointName: str,
        Body: bytes,  # noqa: N803
        ContentType: str = "text/csv",  # noqa: N803
        Accept: str = "text/csv",
    ) -> dict[str, Any]:  # noqa: N803
        if EndpointName not in self.urls:
            raise StageError(f"endpoint {EndpointName} is not running; deploy it first")
        request = urllib.request.Request(
            f"{self.urls[EndpointName]}/invocations",
            data=Body,
            method="POST",
            headers={"Content-Type": ContentType, "Accept": Accept},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return {
                    "Body": io.BytesIO(resp.read()),
                    "ContentType": resp.headers.get("Content-Type"),
                }
        except urllib.error.HTTPError as exc:
            raise StageError(
                f"endpoint {EndpointName} answered {exc.code}: "
                f"{exc.read().decode(errors='replace')[:300]}"
            ) from None


@REGISTRY.register("local")
class LocalBackend(ByoBackend):
    poll_interval = 0.1

    @property
    def store(self) -> LocalArtifactStore:
        bucket = self.settings.get("s3_bucket") or self.settings.name("byo-artifacts")
        return LocalArtifactStore(self.ctx.run_dir / "artifact-store", bucket)

    @property
    def jobs_dir(self) -> Path:
        return self.ctx.run_dir / "jobs"

    # -- build ----------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        source = container.container_dir()
        tag = container.digest(source)[:12]
        repository = self.settings.get("ecr_repository") or self.settings.name("byo-scikit")
        target = self.ctx.run_dir / "images" / f"{repository}-{tag}"
        container.stage_image(source, target)
        return {
            "repository": repository,
            "tag": tag,
            "uri": f"local/{repository}:{tag}",
            "path": str(target),
        }

    # -- data and training --------------------------------------------------------------
    def upload_data(self, files: dict[str, Path]) -> dict[str, str]:
        return {
            split: self.store.put_file(path, f"{DATA_PREFIX}/{split}/{path.name}")
            for split, path in files.items()
        }

    def start_training(
        self,
        job_name: str,
        image: dict[str, Any],
        hyperparameters: dict[str, str],
        data: dict[str, str],
    ) -> dict[str, Any]:
        """Run ``train`` to the end (bounded by ``max_runtime``) in a fresh /opt/ml tree."""
        job_dir = self.jobs_dir / job_name
        tree = job_dir / "opt_ml"
        shutil.rmtree(job_dir, ignore_errors=True)
        config = tree / "input" / "config"
        channel = tree / "input" / "data" / "training"
        for folder in (config, channel, tree / "model", tree / "output"):
            folder.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(
            json.dumps({"training": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
        )
        shutil.copyfile(self.store.path(data["train"]), channel / "train.csv")
        max_runtime = self.settings.get("max_runtime", 600, int)
        log_path = job_dir / "train.log"
        status: dict[str, Any] = {
            "TrainingJobName": job_name,
            "TrainingStartTime": _now(),
            "AlgorithmSpecification": {"TrainingImage": image["uri"]},
            "HyperParameters": hyperparameters,
            "LogPath": str(log_path),
        }
        start = time.monotonic()
        with open(log_path, "wb") as log:
            try:
                done = subprocess.run(
                    [sys.executable, str(Path(image["path"]) / "program" / "train")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**_child_env(), "BYO_OPT_ML": str(tree)},
                    timeout=max_runtime,
                    check=False,
                )
                code: int | None = done.returncode
            except subprocess.TimeoutExpired:
                code = None
        status["TrainingTimeInSeconds"] = round(time.monotonic() - start, 2)
        status["TrainingEndTime"] = _now()
        failure = tree / "output" / "failure"
        if code == 0:
            uri = self.store.put_model(tree / "model", model_key(job_name))
            status.update(
                TrainingJobStatus="Completed",
                SecondaryStatus="Completed",
                ModelArtifacts={"S3ModelArtifacts": uri},
            )
        else:
            reason = (
                failure.read_text().strip()
                if failure.is_file()
                else f"MaxRuntimeInSeconds {max_runtime} exceeded"
                if code is None
                else f"train exited with code {code} and wrote no failure reason"
            )
            status.update(
                TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=reason
            )
        shutil.rmtree(tree)  # the temporary /opt/ml tree; the model is in the store now
        (job_dir / "status.json").write_text(json.dumps(status, indent=2))
        return {
            "job_name": job_name,
            "status": status["TrainingJobStatus"],
            "seconds": status["TrainingTimeInSeconds"],
            "log": str(log_path),
        }

    def training_log(self, job_name: str) -> str:
        path = self.jobs_dir / job_name / "train.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def sagemaker_client(self) -> LocalSageMaker:
        return LocalSageMaker(self.jobs_dir)

    def runtime_client(self) -> LocalRuntime:
        return LocalRuntime(self.ctx.state.get("endpoints", {}))

    # -- endpoints ----------------------------------------------------------------------
    def deploy(
        self, env: str, job_name: str, model_uri: str, image: dict[str, Any]
    ) -> dict[str, Any]:
        name = resource_name(self.settings, env)
        endpoints = self.ctx.state.get("endpoints", {})
        current = endpoints.get(env)
        if (
            current
            and current["model_uri"] == model_uri
            and current["image"] == image["uri"]
            and ManagedServer.from_dict(current["server"]).alive()
        ):
            self.ctx.say(f"endpoint {name} already serves {model_uri}")
            return current
        tracker = self.ctx.tracker
        tracker.release(f"process:{name}")  # an older model on this endpoint: replace it
        folder = self.ctx.run_dir / "endpoints" / name
        tracker.add("path", f"{name}-files", path=str(folder))
        self.store.extract_model(model_uri, folder / "opt_ml" / "model")
        workers = self.settings.get("serve_workers", 2, int)
        server = start_server(
            name,
            [
                sys.executable,
                str(Path(image["path"]) / "program" / "serve"),
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                str(workers),
            ],
            run_dir=self.ctx.run_dir,
            tracker=tracker,
            health_path="/ping",
            env={"BYO_OPT_ML": str(folder / "opt_ml")},
            timeout=60,
        )
        record = {
            "endpoint_name": name,
            "url": server.url,
            "model_uri": model_uri,
            "image": image["uri"],
            "instances": f"{workers} local worker process(es)",
            "server": server.to_dict(),
        }
        endpoints[env] = record
        self.ctx.state.update(endpoints=endpoints)
        return record


def _child_env() -> dict[str, str]:
    """Our environment without BYO_* variables, so a job cannot inherit another's tree."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BYO_")}
