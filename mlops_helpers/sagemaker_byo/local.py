"""Local backend: the container's own ``train`` and ``serve`` under the SageMaker contract.

"Image" = the checked container source staged under its content digest, with the packages
its requirements.txt installs (``image_site``); "S3" = a folder laid out like the bucket;
"endpoint" = ``serve`` on a free loopback port. Nothing is mocked: the very programs the
Dockerfile copies into the image run here as processes, with the image's packages only.

Production outlives builds: its server is recorded under ``<run_dir>/production/`` and is
started outside the build's process tree as Jenkins sees it (``JENKINS_NODE_COOKIE``), so
the end of a build does not kill it. A new ``deploy_prod`` starts the new model beside the
old one, checks it, then switches the endpoint name over and stops the old server.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError
from mlops_helpers.resources import ResourceTracker, stop_process_group
from mlops_helpers.sagemaker_byo import container, image_site
from mlops_helpers.sagemaker_byo.base import ByoBackend
from mlops_helpers.sagemaker_byo.registry import REGISTRY, resource_name
from mlops_helpers.sagemaker_byo.store import DATA_PREFIX, LocalArtifactStore, model_key
from mlops_helpers.servers import ManagedServer, http_json, server_env, start_server

# Jenkins' ProcessTreeKiller ends every process of a build carrying its cookie; production
# must outlive the build that deployed it, as a SageMaker endpoint does.
OUTLIVES_THE_BUILD = {"JENKINS_NODE_COOKIE": "dontKillMe", "BUILD_ID": "dontKillMe"}


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

    def __init__(self, endpoints: list[dict[str, Any]]) -> None:
        self.urls = {e["endpoint_name"]: e["url"] for e in endpoints}

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
                answer = {
                    "Body": io.BytesIO(resp.read()),
                    "ContentType": resp.headers.get("Content-Type"),
                }
                # what SageMaker returns as CustomAttributes: the container's own header
                attributes = resp.headers.get("X-Amzn-SageMaker-Custom-Attributes")
                if attributes is not None:
                    answer["CustomAttributes"] = attributes
                return answer
        except urllib.error.HTTPError as exc:
            raise StageError(
                f"endpoint {EndpointName} answered {exc.code}: "
                f"{exc.read().decode(errors='replace')[:300]}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StageError(f"endpoint {EndpointName} does not answer: {reason}") from None


@REGISTRY.register("local")
class LocalBackend(ByoBackend):
    poll_interval = 0.1

    @property
    def store(self) -> LocalArtifactStore:
        bucket = self.settings.s3_bucket or self.settings.name("byo-artifacts")
        return LocalArtifactStore(self.ctx.run_dir / "artifact-store", bucket)

    @property
    def jobs_dir(self) -> Path:
        return self.ctx.run_dir / "jobs"

    # -- build ----------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        source = container.container_dir(self.settings)
        tag = container.digest(source)[:12]
        repository = self.settings.ecr_repository or self.settings.name("byo-scikit")
        target = self.ctx.run_dir / "images" / f"{repository}-{tag}"
        container.stage_image(source, target)
        # the packages requirements.txt installs in the image, and no others of ours
        image_site.link_site(source / "requirements.txt", target / image_site.SITE_DIR)
        return {
            "repository": repository,
            "tag": tag,
            "uri": f"local/{repository}:{tag}",
            "path": str(target),
            "source": str(source),
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
        (config / "inputdataconfig.json").write_text(  # as SageMaker writes it
            json.dumps(
                {
                    "training": {
                        "ContentType": "text/csv",
                        "TrainingInputMode": "File",
                        "S3DistributionType": "FullyReplicated",
                        "RecordWrapperType": "None",
                    }
                }
            )
        )
        shutil.copyfile(self.store.path(data["train"]), channel / "train.csv")
        max_runtime = self.settings.max_runtime
        log_path = job_dir / "train.log"
        status: dict[str, Any] = {
            "TrainingJobName": job_name,
            "TrainingStartTime": _now(),
            "AlgorithmSpecification": {"TrainingImage": image["uri"]},
            "HyperParameters": hyperparameters,
            "LogPath": str(log_path),
        }
        python, site_env = _image_python(image)
        start = time.monotonic()
        with open(log_path, "wb") as log:
            try:
                done = subprocess.run(
                    [*python, str(Path(image["path"]) / "program" / "train")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**_child_env(), **site_env, "BYO_OPT_ML": str(tree)},
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
        records = list(self.ctx.state.get("endpoints", {}).values())
        production = self.production()
        return LocalRuntime(records + ([production] if production else []))

    def model_digest(self, model_uri: str) -> str:
        return self.store.model_digest(model_uri)

    # -- endpoints ----------------------------------------------------------------------
    def _start(
        self,
        server_name: str,
        model_uri: str,
        image: dict[str, Any],
        tracker: ResourceTracker,
        env: dict[str, str],
    ) -> ManagedServer:
        """``serve`` for ``model_uri`` on a free loopback port; files and process tracked."""
        folder = self.ctx.run_dir / "endpoints" / server_name
        tracker.add("path", f"{server_name}-files", path=str(folder))
        self.store.extract_model(model_uri, folder / "opt_ml" / "model")
        workers = self.settings.serve_workers
        python, site_env = _image_python(image)
        return start_server(
            server_name,
            [
                *python,
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
            env={"BYO_OPT_ML": str(folder / "opt_ml"), **site_env, **env},
            timeout=60,
            interval=0.05,  # /ping is cheap; the server is ready a second or so after start
        )

    def _record(
        self, name: str, server: ManagedServer, model_uri: str, image: dict[str, Any], digest: str
    ) -> dict[str, Any]:
        workers = self.settings.serve_workers
        return {
            "endpoint_name": name,
            "url": server.url,
            "model_uri": model_uri,
            "model_digest": digest,
            "image": image["uri"],
            "instances": f"{workers} local worker process(es)",
            "server": server.to_dict(),
        }

    def _serving(self, record: dict[str, Any] | None, digest: str, image: dict[str, Any]) -> bool:
        return bool(
            record
            and record.get("model_digest") == digest
            and record["image"] == image["uri"]
            and ManagedServer.from_dict(record["server"]).alive()
        )

    def deploy(
        self, env: str, job_name: str, model_uri: str, image: dict[str, Any], digest: str
    ) -> dict[str, Any]:
        if env == "prod":
            return self._deploy_production(model_uri, image, digest)
        name = resource_name(self.settings, env)
        endpoints = self.ctx.state.get("endpoints", {})
        if self._serving(endpoints.get(env), digest, image):
            self.ctx.say(f"endpoint {name} already serves {model_uri}")
            return dict(endpoints[env])
        tracker = self.ctx.tracker
        # blue-green: the new server starts beside the old one (a failure leaves the old one
        # serving); the old one stops once the new one is healthy
        server_name = f"{name}-{digest[:12]}-{image['tag'][:12]}"
        server = self._start(server_name, model_uri, image, tracker, {})
        record = self._record(name, server, model_uri, image, digest)
        old = endpoints.get(env)
        endpoints[env] = record
        self.ctx.state.update(endpoints=endpoints)
        if old and old["server"]["name"] != server_name:
            for rid in (f"process:{old['server']['name']}", f"path:{old['server']['name']}-files"):
                tracker.release(rid)
        return record

    def _deploy_production(
        self, model_uri: str, image: dict[str, Any], digest: str
    ) -> dict[str, Any]:
        """Start the new model beside the old, check it, switch the name over, stop the old."""
        name = resource_name(self.settings, "prod")
        old = self.production()
        if self._serving(old, digest, image):
            self.ctx.say(f"endpoint {name} already serves {model_uri}")
            return dict(old or {})
        version = f"{name}-{digest[:12]}-{image['tag'][:12]}"  # this model in this image
        # until the switch the new server is this build's: a failure here is cleaned up
        server = self._start(version, model_uri, image, self.ctx.tracker, OUTLIVES_THE_BUILD)
        record = self._record(name, server, model_uri, image, digest)
        self.check_endpoint(record, digest)
        for rid in (f"path:{version}-files", f"process:{version}"):  # server released first
            self.hand_to_production(rid)
        self.production_state.update(endpoint=record)
        if old and old["server"]["name"] != version:
            self._release_production(old["server"]["name"])
            self.ctx.say(f"endpoint {name}: {old['model_uri']} replaced by {model_uri}")
        return record

    def _release_production(self, server_name: str) -> None:
        for rid in (f"process:{server_name}", f"path:{server_name}-files"):
            self.production_tracker.release(rid)

    def check_endpoint(self, record: dict[str, Any], digest: str) -> None:
        name = record["endpoint_name"]
        server = ManagedServer.from_dict(record["server"])
        if not server.alive():
            # its workers may still hold the port: end the whole group, then refuse
            stop_process_group(server.pid, server.start_time)
            raise StageError(
                f"endpoint {name}: its server (pid {server.pid}) is gone; its process group "
                f"was stopped; deploy it again"
            )
        try:
            status, body = http_json("GET", f"{record['url']}/ping", timeout=10)
        except OSError as exc:
            raise StageError(f"endpoint {name} at {record['url']} does not answer: {exc}") from None
        served = body.get("model_digest") if isinstance(body, dict) else None
        if status != 200 or served != digest:
            raise StageError(
                f"endpoint {name} at {record['url']} serves model {str(served)[:12]} "
                f"(HTTP {status}), not the deployed {digest[:12]}"
            )

    def teardown_production(self) -> list[str]:
        report = self.production_tracker.cleanup(log=self.ctx.say)
        report.raise_for_failures()
        self.production_state.clear()
        return report.released


def _image_python(image: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """How the image's programs run here: with its own packages only (``image_site``)."""
    return image_site.python(Path(image["path"]) / image_site.SITE_DIR)


def _child_env() -> dict[str, str]:
    """Our environment without BYO_* variables, so a job cannot inherit another's tree, and
    without secrets (a local job or endpoint needs no cloud credential)."""
    return {k: v for k, v in server_env().items() if not k.startswith("BYO_")}
