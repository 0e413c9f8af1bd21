"""The continuous_x lifecycle: platform, train, evaluate, build, deploy_staging,
promote_canary, promote_production, revert, cleanup.

The same stage code runs from the notebook and the CLI; on Chameleon the Argo
WorkflowTemplates under ``scenarios/continuous_x/workflows`` carry the same stages (a test
keeps the two lists equal).
"""

from __future__ import annotations

from typing import Any

from mlops_helpers.continuous_x import chameleon as _chameleon  # noqa: F401  ("chameleon")
from mlops_helpers.continuous_x import local as _local  # noqa: F401  (registers "local")
from mlops_helpers.continuous_x.mlflow_rest import TERMINAL
from mlops_helpers.continuous_x.registry import (
    ENVIRONMENTS,
    PROMOTION_SOURCE,
    REGISTRY,
    SCENARIO,
    model_name,
)
from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.waiting import wait_until

HYPERPARAMETERS = {
    "logistic_regression": ("C", "max_iter"),
    "random_forest": ("n_estimators", "max_depth"),
}
DEFAULTS: dict[str, Any] = {
    "model_name": "continuous-x-model",  # registered model; the attendee suffix is added
    "dataset": "iris",
    "model_type": "logistic_regression",  # or random_forest
    "C": 1.0,
    "max_iter": 500,
    "n_estimators": 50,
    "max_depth": None,
    "min_accuracy": 0.9,  # the evaluation service's gate
    "train_timeout": 120,  # seconds the pipeline polls MLflow for a run to end
    "revert_environment": "production",
    "chi_site": "KVM@TACC",
}


def _need(ctx: StageContext, key: str, stage: str) -> Any:
    value = ctx.state.get(key)
    if value is None:
        raise StageError(f"no {key.replace('_', ' ')} in {ctx.run_dir}: run {stage} first")
    return value


def training_request(ctx: StageContext) -> dict[str, Any]:
    """The body of ``POST /train`` from the settings (only the model type's knobs)."""
    s = ctx.settings
    model_type = str(s.get("model_type", DEFAULTS["model_type"]))
    names = HYPERPARAMETERS.get(model_type, ())
    params = {k: s.get(k, DEFAULTS.get(k)) for k in names}
    return {"dataset": s.get("dataset", DEFAULTS["dataset"]), "model_type": model_type,
            "params": {k: v for k, v in params.items() if v is not None}}


def serving(ctx: StageContext) -> dict[str, str | None]:
    """The model version each environment's app says it serves (None: not deployed)."""
    answers = {env: ctx.backend.served(env) for env in ENVIRONMENTS}
    return {env: (a or {}).get("model_version") for env, a in answers.items()}


# -- stages ----------------------------------------------------------------------------------
def platform(ctx: StageContext) -> dict[str, Any]:
    info = ctx.backend.start_platform()
    ctx.state.update(platform=info)
    for name, url in info["urls"].items():
        ctx.say(f"{name}: {url}")
    return {"urls": info["urls"]}


def await_run(ctx: StageContext, run_id: str, timeout: float | None = None) -> dict[str, Any]:
    """Poll the run in MLflow, bounded, until FINISHED, FAILED or KILLED."""
    limit = timeout or ctx.settings.get("train_timeout", DEFAULTS["train_timeout"], float)
    mlflow = ctx.backend.mlflow()
    run: dict[str, Any] = wait_until(
        lambda: mlflow.run(run_id), what=f"MLflow run {run_id}", timeout=limit,
        interval=ctx.backend.poll_interval, until=lambda r: r["status"] in TERMINAL,
        describe=lambda r: r["status"],
    )
    return run


def train(ctx: StageContext) -> dict[str, Any]:
    """Gate: start training (the service answers at once), then wait for the run to end."""
    request = training_request(ctx)
    answer = ctx.backend.start_training(request)
    run_id = answer["run_id"]
    ctx.state.update(run_id=run_id, candidate_version=None)
    ctx.say(f"training run {run_id} started: {request}")
    run = await_run(ctx, run_id)
    if run["status"] != "FINISHED":
        staging = serving(ctx).get("staging")
        raise GateFailed(f"training run {run_id} ended {run['status']}: {run['error']}; "
                         f"no version is registered and staging keeps version {staging}")
    ctx.say(f"training run {run_id} FINISHED: {run['metrics']}")
    return {"run_id": run_id, "request": request, **run}


def evaluate(ctx: StageContext) -> dict[str, Any]:
    """Gate: the evaluation service registers a new version only above its threshold."""
    run_id = _need(ctx, "run_id", "train")
    answer = ctx.backend.evaluate(run_id)
    if not answer.get("passed"):
        raise GateFailed(f"evaluation of run {run_id}: {answer.get('metric')} "
                         f"{answer.get('accuracy'):.4f} is below the threshold "
                         f"{answer.get('threshold')}; no version is registered")
    version = answer.get("new_model_version")
    if not version:  # the seed's bug class: a version that is never read must stop the run
        raise StageError(f"evaluation of run {run_id} passed but returned no model version")
    ctx.state.update(candidate_version=str(version))
    ctx.say(f"run {run_id}: accuracy {answer['accuracy']:.4f} >= {answer['threshold']}; "
            f"registered version {version}")
    return answer


def _bundle(ctx: StageContext, version: str) -> dict[str, Any]:
    builds = ctx.state.get("builds") or {}
    if version not in builds:
        builds[version] = ctx.backend.build(model_name(ctx.settings), version)
        ctx.state.update(builds=builds)
    bundle: dict[str, Any] = builds[version]
    return bundle


def build(ctx: StageContext) -> dict[str, Any]:
    version = str(ctx.settings.get("version") or _need(ctx, "candidate_version", "evaluate"))
    _check_version(ctx, version, "build")
    bundle = _bundle(ctx, version)
    ctx.say(f"build {bundle['tag']} ({bundle['digest'][:19]}...)")
    return bundle


def _check_version(ctx: StageContext, version: str, action: str) -> None:
    name, mlflow = model_name(ctx.settings), ctx.backend.mlflow()
    if not mlflow.version_exists(name, version):
        known = mlflow.versions(name)
        raise GateFailed(f"version {version} of {name} does not exist (known: "
                         f"{', '.join(known) or 'none'}); refusing to {action} it")


def _release(ctx: StageContext, environment: str, version: str,
             record: bool = True) -> dict[str, Any]:
    """Point the environment's alias at the version and (re)deploy its app."""
    bundle = _bundle(ctx, version)
    ctx.backend.mlflow().set_alias(model_name(ctx.settings), environment, version)
    deployed = ctx.backend.deploy(environment, bundle)
    deployments = ctx.state.get("deployments") or {}
    deployments[environment] = deployed
    history = ctx.state.get("history") or {}
    if record:
        history.setdefault(environment, []).append(version)
    ctx.state.update(deployments=deployments, history=history)
    ctx.say(f"{environment} serves version {version} ({bundle['tag']}) at {deployed['url']}")
    return {k: v for k, v in deployed.items() if k != "server"}


def deploy_staging(ctx: StageContext) -> dict[str, Any]:
    version = str(ctx.settings.get("version") or _need(ctx, "candidate_version", "evaluate"))
    _check_version(ctx, version, "deploy")
    return _release(ctx, "staging", version)


def _promote(ctx: StageContext, target: str) -> dict[str, Any]:
    source = PROMOTION_SOURCE[target]
    requested = ctx.settings.get("version")
    version = str(requested) if requested is not None else ctx.backend.mlflow().alias(
        model_name(ctx.settings), source)
    if version is None:
        raise GateFailed(f"{source} serves no version yet; nothing to promote to {target}")
    _check_version(ctx, version, f"promote to {target}")
    return _release(ctx, target, version)


def promote_canary(ctx: StageContext) -> dict[str, Any]:
    return _promote(ctx, "canary")


def promote_production(ctx: StageContext) -> dict[str, Any]:
    return _promote(ctx, "production")


def revert(ctx: StageContext) -> dict[str, Any]:
    """Put the version the environment served before back (its alias moves back too)."""
    environment = str(ctx.settings.get("revert_environment", DEFAULTS["revert_environment"]))
    history = ctx.state.get("history") or {}
    served = history.get(environment, [])
    if len(served) < 2:
        current = served[-1] if served else None
        ctx.say(f"{environment} has no earlier version to go back to; it keeps {current}")
        return {"environment": environment, "reverted": False, "model_version": current}
    dropped = served.pop()
    ctx.state.update(history=history)
    previous = served[-1]
    result = _release(ctx, environment, previous, record=False)
    return {**result, "reverted": True, "from_version": dropped}


def cleanup(ctx: StageContext) -> dict[str, Any]:
    return cleanup_stage(ctx, forget=("platform", "deployments", "history", "builds",
                                      "run_id", "candidate_version"))


PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage("platform", platform, "MLflow, the training and the evaluation service"),
        Stage("train", train, "start a training run and poll MLflow until it ends", gate=True),
        Stage("evaluate", evaluate, "evaluate the run; register a version if it passes",
              gate=True),
        Stage("build", build, "bundle the app with that exact model version"),
        Stage("deploy_staging", deploy_staging, "serve the new version in staging",
              environment="staging"),
        Stage("promote_canary", promote_canary, "staging's version to canary",
              environment="canary"),
        Stage("promote_production", promote_production, "canary's version to production",
              environment="production"),
        Stage("revert", revert, "put production's previous version back",
              environment="production"),
        Stage("cleanup", cleanup, "stop every server, remove the store and builds"),
    ],
    backends=REGISTRY,
    defaults=DEFAULTS,
)
