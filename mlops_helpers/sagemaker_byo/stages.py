"""The sagemaker_byo pipeline: build, train, train_status, deploy_test, smoke_test,
deploy_prod, then teardown (on purpose only) and cleanup. The same stage code runs from the
notebook, the CLI and Jenkins.

Production outlives builds: ``deploy_prod`` updates the production endpoint in place, and
``cleanup`` (run after every build) removes only what the build itself started, so a build
that fails leaves the old model serving. ``teardown`` removes production on purpose.
Each model is known by its digest (sha256 of ``model.joblib``): the smoke test checks the
endpoint answers with that digest, and ``deploy_prod`` promotes only the digest that passed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.sagemaker_byo import aws as _aws  # noqa: F401  (registers "aws")
from mlops_helpers.sagemaker_byo import local as _local  # noqa: F401  (registers "local")
from mlops_helpers.sagemaker_byo.lambdas import CHECK_TRAINING_STATUS, INVOKE_ENDPOINT, LambdaError
from mlops_helpers.sagemaker_byo.registry import REGISTRY, resource_name
from mlops_helpers.waiting import wait_until

SCENARIO = "sagemaker_byo"
# what a build runs; teardown (remove production) and cleanup are separate on purpose
BUILD_STAGES = ["build", "train", "train_status", "deploy_test", "smoke_test", "deploy_prod"]
HYPERPARAMETERS = ("max_depth", "min_samples_leaf", "criterion")
DEFAULTS: dict[str, Any] = {
    "name_prefix": "byo",  # first part of every job and endpoint name
    "dataset": "iris",
    "max_depth": 4,  # a hyperparameter of the container's decision tree
    "min_samples_leaf": 1,
    "criterion": "gini",
    "min_accuracy": 0.9,  # the smoke test's gate
    "max_runtime": 600,  # seconds a training job may run (MaxRuntimeInSeconds)
    "status_timeout": 3600,  # seconds train_status waits for a job to finish
    # local endpoint worker processes: one answers a workshop's requests; each more is a
    # fresh interpreter (uvicorn spawns its workers) holding ~90 MiB
    "serve_workers": 1,
    "training_instance_type": "ml.m5.large",
    "training_instance_count": 1,
    "endpoint_instance_type": "ml.t2.medium",
    "endpoint_instance_count": 1,
}


def _need(ctx: StageContext, key: str, stage: str) -> Any:
    value = ctx.state.get(key)
    if value is None:
        raise StageError(
            f"no {key.replace('_', ' ')} in {ctx.run_dir}: run the {stage} stage first"
        )
    return value


def container_code(ctx: StageContext) -> dict[str, str]:
    """The digest of the container's source: an image built from other code is stale."""
    from mlops_helpers.sagemaker_byo import container

    return {"container_code": container.digest(container.container_dir(ctx.settings))[:16]}


def build(ctx: StageContext) -> dict[str, Any]:
    image = ctx.backend.build()
    ctx.state.update(image=image)
    ctx.say(f"image {image['uri']}")
    return image


def train(ctx: StageContext) -> dict[str, Any]:
    from mlops_helpers.sagemaker_byo.dataset import write_csvs

    backend = ctx.backend  # its settings and credentials are checked before any work
    image = _need(ctx, "image", "build")
    files = write_csvs(ctx.settings.get("dataset", DEFAULTS["dataset"]), ctx.run_dir / "data")
    data = backend.upload_data(files)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    job_name = resource_name(ctx.settings, "train")[:32] + f"-{stamp}"  # <= 63 with "-prod"
    hyperparameters = {k: str(ctx.settings.get(k, DEFAULTS[k])) for k in HYPERPARAMETERS}
    ctx.state.update(
        training_job=job_name, data=data, model_uri=None, model_digest=None, smoke_test=None
    )
    ctx.say(f"training job {job_name} with hyperparameters {hyperparameters}")
    result = ctx.backend.start_training(job_name, image, hyperparameters, data)
    return {"hyperparameters": hyperparameters, "data": data, **result}


def train_status(ctx: StageContext) -> dict[str, Any]:
    """Gate: wait (bounded) through the check_training_status Lambda until Completed."""
    backend = ctx.backend
    job_name = _need(ctx, "training_job", "train")
    event = {"TrainingJobName": job_name}
    try:
        answer = wait_until(
            lambda: ctx.backend.run_lambda(CHECK_TRAINING_STATUS, event),
            what=f"training job {job_name}",
            timeout=ctx.settings.get("status_timeout", DEFAULTS["status_timeout"], float),
            interval=ctx.backend.poll_interval,
            until=lambda a: a["TrainingJobStatus"] == "Completed",
            describe=lambda a: f"{a['TrainingJobStatus']} ({a.get('SecondaryStatus')})",
        )
    except LambdaError as exc:
        if exc.error_type == "TrainingJobFailed":
            raise GateFailed(f"{exc.message}; no endpoint is created") from exc
        raise
    digest = backend.model_digest(answer["ModelArtifacts"])
    ctx.state.update(model_uri=answer["ModelArtifacts"], model_digest=digest)
    ctx.say(
        f"training job {job_name} Completed; model {answer['ModelArtifacts']} "
        f"(digest {digest[:12]})"
    )
    return {**answer, "ModelDigest": digest}


def _deploy(ctx: StageContext, env: str) -> dict[str, Any]:
    backend = ctx.backend
    model_uri = _need(ctx, "model_uri", "train and train_status")
    digest = _need(ctx, "model_digest", "train_status")
    endpoint = backend.deploy(
        env, ctx.state.get("training_job"), model_uri, _need(ctx, "image", "build"), digest
    )
    ctx.say(f"{env} endpoint {endpoint['endpoint_name']} serves {model_uri}")
    return {k: v for k, v in endpoint.items() if k != "server"}


def deploy_test(ctx: StageContext) -> dict[str, Any]:
    return _deploy(ctx, "test")


def smoke_test(ctx: StageContext) -> dict[str, Any]:
    """Gate: held-out rows through the invoke_endpoint Lambda; accuracy must reach the bar,
    and every answer must come from the model this build deployed (its digest)."""
    from mlops_helpers.sagemaker_byo.dataset import read_csv

    backend = ctx.backend
    endpoint = _need(ctx, "endpoints", "deploy_test").get("test")
    if endpoint is None:
        raise StageError("no test endpoint: run deploy_test first")
    digest = _need(ctx, "model_digest", "train_status")
    verdict = {
        "passed": False,
        "model_uri": endpoint["model_uri"],
        "model_digest": digest,
        "endpoint_name": endpoint["endpoint_name"],
    }
    ctx.state.update(smoke_test=verdict)  # a failure below stays recorded as a failure
    try:
        backend.check_endpoint(endpoint, digest)
    except StageError as exc:
        raise GateFailed(f"smoke test: {exc}; production is not touched") from exc
    rows, labels = read_csv(ctx.run_dir / "data" / "test.csv")
    threshold = ctx.settings.get("min_accuracy", DEFAULTS["min_accuracy"], float)
    event = {
        "EndpointName": endpoint["endpoint_name"],
        "Rows": rows,
        "Labels": labels,
        "MinAccuracy": threshold,
        "BatchSize": 100,
        "ModelDigest": digest,
    }
    try:
        answer = backend.run_lambda(INVOKE_ENDPOINT, event)
    except LambdaError as exc:
        if exc.error_type in ("SmokeTestFailed", "WrongModel"):
            raise GateFailed(f"smoke test: {exc.message}; production is not touched") from exc
        raise
    ctx.state.update(smoke_test={**verdict, "passed": True, "accuracy": answer["Accuracy"]})
    ctx.say(
        f"smoke test passed: accuracy {answer['Accuracy']:.4f} >= {threshold} (model {digest[:12]})"
    )
    return {
        "endpoint_name": endpoint["endpoint_name"],
        "model_digest": digest,
        "accuracy": answer["Accuracy"],
        "min_accuracy": threshold,
        "labels": labels,
        "predictions": answer["Predictions"],
    }


def deploy_prod(ctx: StageContext) -> dict[str, Any]:
    # The gate holds even when stages run one by one (Jenkins): prod only gets the very
    # model (digest) that passed the smoke test on the test endpoint.
    backend = ctx.backend
    smoke = ctx.state.get("smoke_test") or {}
    digest = ctx.state.get("model_digest")
    if not (
        smoke.get("passed")
        and digest
        and smoke.get("model_digest") == digest
        and smoke.get("model_uri") == ctx.state.get("model_uri")
    ):
        raise GateFailed(
            "the current model has not passed the smoke test; run smoke_test before deploy_prod"
        )
    record = _deploy(ctx, "prod")
    serving = backend.production()
    if serving is None:
        raise StageError("deploy_prod finished but no production endpoint is recorded")
    backend.check_endpoint(serving, digest)
    return record


def teardown(ctx: StageContext) -> dict[str, Any]:
    """Remove production on purpose (its own Jenkins parameter), then the build's leftovers."""
    removed = ctx.backend.teardown_production()
    ctx.say(f"production removed: {', '.join(removed) or 'nothing was serving'}")
    return {"production_removed": removed, **cleanup(ctx)}


def cleanup(ctx: StageContext) -> dict[str, Any]:
    """What this build started (test endpoint, a model that did not reach production);
    never the production endpoint."""
    _ = ctx.backend  # no or bad cloud credentials: say so before releasing anything
    result = cleanup_stage(ctx)
    ctx.state.update(endpoints={})
    return result


PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage(
            "build",
            build,
            "check the container code and build/push its image",
            fingerprint=container_code,
        ),
        Stage(
            "train",
            train,
            "upload the data and run a training job with the image",
            inputs=("dataset", *HYPERPARAMETERS),
            uses=("build",),
        ),
        Stage(
            "train_status",
            train_status,
            "wait for the training job: Completed or why not",
            gate=True,
            uses=("train",),
        ),
        Stage(
            "deploy_test",
            deploy_test,
            "serve the model on the test endpoint",
            environment="test",
            uses=("train_status",),
        ),
        Stage(
            "smoke_test",
            smoke_test,
            "held-out rows through the test endpoint vs threshold",
            gate=True,
            environment="test",
            uses=("deploy_test",),
        ),
        Stage(
            "deploy_prod",
            deploy_prod,
            "update the prod endpoint in place to the smoke-tested model",
            environment="production",
            uses=("smoke_test",),
        ),
        Stage(
            "teardown",
            teardown,
            "remove the production endpoint on purpose (not part of a build)",
            environment="production",
        ),
        Stage("cleanup", cleanup, "delete what this build started; production stays"),
    ],
    backends=REGISTRY,
    defaults=DEFAULTS,
)
