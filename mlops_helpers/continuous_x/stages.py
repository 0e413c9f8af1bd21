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
from mlops_helpers.continuous_x.canary import CanaryRules, judge
from mlops_helpers.continuous_x.mlflow_rest import TERMINAL
from mlops_helpers.continuous_x.registry import (
    ENVIRONMENTS,
    PROMOTION_SOURCE,
    REGISTRY,
    SCENARIO,
    model_name,
)
from mlops_helpers.errors import GateFailed, NextStep, StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.waiting import wait_until

HYPERPARAMETERS = {
    "logistic_regression": ("C", "max_iter"),
    "random_forest": ("n_estimators", "max_depth"),
}


def _need(ctx: StageContext, key: str, stage: str) -> Any:
    value = ctx.state.get(key)
    if value is None:
        raise StageError(f"no {key.replace('_', ' ')} in {ctx.run_dir}: run {stage} first")
    return value


def training_request(ctx: StageContext) -> dict[str, Any]:
    """The body of ``POST /train`` from the settings (only the model type's knobs)."""
    model_type = ctx.settings.model_type
    params = {k: ctx.settings.get(k) for k in HYPERPARAMETERS[model_type]}
    return {
        "dataset": ctx.settings.dataset,
        "model_type": model_type,
        "params": {k: v for k, v in params.items() if v is not None},
    }


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
    limit = timeout or ctx.settings.train_timeout
    mlflow = ctx.backend.mlflow()
    run: dict[str, Any] = wait_until(
        lambda: mlflow.run(run_id),
        what=f"MLflow run {run_id}",
        timeout=limit,
        interval=ctx.backend.poll_interval,
        until=lambda r: r["status"] in TERMINAL,
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
        raise GateFailed(
            f"training run {run_id} ended {run['status']}: {run['error']}; "
            f"no version is registered and staging keeps version {staging}"
        )
    ctx.say(f"training run {run_id} FINISHED: {run['metrics']}")
    return {"run_id": run_id, "request": request, **run}


def evaluate(ctx: StageContext) -> dict[str, Any]:
    """Gate: the evaluation service registers a new version only at or above the threshold
    this stage reads now (not the one the platform started with)."""
    run_id = _need(ctx, "run_id", "train")
    threshold = ctx.settings.min_accuracy  # read now, when the gate runs
    answer = ctx.backend.evaluate(run_id, threshold)
    accuracy = float(answer.get("accuracy", float("nan")))
    passed = bool(answer.get("passed")) and accuracy >= threshold
    if answer.get("new_model_version"):  # promotions check this record for this version
        _record_verdict(ctx, str(answer["new_model_version"]), run_id, accuracy, threshold, passed)
    if not passed:
        raise GateFailed(
            f"evaluation of run {run_id}: {answer.get('metric', 'accuracy')} "
            f"{accuracy:.4f} is below the threshold {threshold}; no version is "
            f"registered"
        )
    version = answer.get("new_model_version")
    if not version:  # the seed's bug class: a version that is never read must stop the run
        raise StageError(f"evaluation of run {run_id} passed but returned no model version")
    ctx.state.update(candidate_version=str(version))
    if answer.get("identical_to"):
        ctx.say(
            f"run {run_id} is identical to version {version} (same data, model and "
            f"settings): no new version registered"
        )
    else:
        ctx.say(
            f"run {run_id}: accuracy {accuracy:.4f} >= {threshold}; registered version {version}"
        )
    return answer


def _bundle(ctx: StageContext, version: str) -> dict[str, Any]:
    builds = ctx.state.get("builds") or {}
    if version not in builds:
        builds[version] = ctx.backend.build(model_name(ctx.settings), version)
        ctx.state.update(builds=builds)
    bundle: dict[str, Any] = builds[version]
    return bundle


def build(ctx: StageContext) -> dict[str, Any]:
    version = str(ctx.settings.version or _need(ctx, "candidate_version", "evaluate"))
    _check_version(ctx, version, "build")
    bundle = _bundle(ctx, version)
    ctx.say(f"build {bundle['tag']} ({bundle['digest'][:19]}...)")
    return bundle


def _record_verdict(
    ctx: StageContext, version: str, run_id: str, accuracy: float, threshold: float, passed: bool
) -> None:
    verdicts = ctx.state.get("evaluations") or {}
    verdicts[version] = {
        "run_id": run_id,
        "accuracy": accuracy,
        "threshold": threshold,
        "passed": passed,
    }
    ctx.state.update(evaluations=verdicts)


def _check_verdict(ctx: StageContext, version: str, action: str) -> None:
    """The version exists and passed this pipeline's evaluation gate (recorded by the
    evaluate stage, in any process); a version registered any other way never moves."""
    _check_version(ctx, version, action)
    verdict = (ctx.state.get("evaluations") or {}).get(version)
    if not verdict or not verdict.get("passed"):
        why = (
            f"its evaluation failed (accuracy {verdict['accuracy']:.4f} below "
            f"{verdict['threshold']})"
            if verdict
            else f"no evaluation passed it in {ctx.run_dir}"
        )
        raise GateFailed(f"version {version}: {why}; refusing to {action} it")


def _check_version(ctx: StageContext, version: str, action: str) -> None:
    name, mlflow = model_name(ctx.settings), ctx.backend.mlflow()
    if not mlflow.version_exists(name, version):
        known = mlflow.versions(name)
        raise GateFailed(
            f"version {version} of {name} does not exist (known: "
            f"{', '.join(known) or 'none'}); refusing to {action} it"
        )


def _release(
    ctx: StageContext, environment: str, version: str, record: bool = True
) -> dict[str, Any]:
    """(Re)deploy the environment's app with the version, then point its alias there: a
    deploy that fails leaves both the app and the alias as they were."""
    bundle = _bundle(ctx, version)
    deployed = ctx.backend.deploy(environment, bundle)
    ctx.backend.mlflow().set_alias(model_name(ctx.settings), environment, version)
    deployments = ctx.state.get("deployments") or {}
    deployments[environment] = deployed
    history = ctx.state.get("history") or {}
    served = history.setdefault(environment, [])
    if record and (not served or served[-1] != version):  # a repeat is no new release
        served.append(version)
    ctx.state.update(deployments=deployments, history=history)
    ctx.say(f"{environment} serves version {version} ({bundle['tag']}) at {deployed['url']}")
    return {k: v for k, v in deployed.items() if k != "server"}


def deploy_staging(ctx: StageContext) -> dict[str, Any]:
    version = str(ctx.settings.version or _need(ctx, "candidate_version", "evaluate"))
    _check_verdict(ctx, version, "deploy")
    return _release(ctx, "staging", version)


def _promotable(ctx: StageContext, target: str) -> str:
    """The version ``target`` may take: the one its source environment serves now (a
    requested version must be that one), which passed the evaluation gate."""
    source = PROMOTION_SOURCE[target]
    requested = ctx.settings.version
    current = ctx.backend.mlflow().alias(model_name(ctx.settings), source)
    version = str(requested) if requested is not None else current
    if version is None:
        raise GateFailed(f"{source} serves no version yet; nothing to promote to {target}")
    _check_verdict(ctx, version, f"promote to {target}")
    if version != current:
        raise GateFailed(
            f"versions move only along staging -> canary -> production: {source} serves "
            f"{'nothing' if current is None else f'version {current}'}, not version "
            f"{version}; refusing to promote it to {target}"
        )
    return version


def _promote(ctx: StageContext, target: str) -> dict[str, Any]:
    return _release(ctx, target, _promotable(ctx, target))


def promote_canary(ctx: StageContext) -> dict[str, Any]:
    return _promote(ctx, "canary")


def canary_gate(ctx: StageContext, version: str) -> dict[str, Any]:
    """Gate: canary's live figures for ``version`` against production's, read now."""
    deployments = ctx.state.get("deployments") or {}
    current = (deployments.get("production") or {}).get("model_version")
    if current is None or str(current) == version:
        why = (
            "production serves nothing yet, so there is no live traffic to compare with"
            if current is None
            else f"production already serves version {version}"
        )
        ctx.say(f"canary gate: {why}")
        return {"version": version, "judged": False, "why": why}
    figures = ctx.backend.live_figures()
    if figures is None:
        if ctx.settings.canary_gate == "off":
            ctx.say("canary gate: off (canary_gate=off); this backend reports no live figures")
            return {"version": version, "judged": False, "why": "canary_gate=off"}
        raise GateFailed(
            "this backend reports no live canary figures: watch the canary in "
            "the ingress metrics, then promote with -p canary_gate off"
        )
    canary = figures.get("environments", {}).get("canary", {}).get(version)
    # production's figures of the same window: since the canary's first request
    since = (canary or {}).get("first_at")
    window = ctx.backend.live_figures(since=since) if since is not None else figures
    production = (window or {}).get("environments", {}).get("production", {}).get(str(current))
    verdict = judge(canary, production, CanaryRules.from_settings(ctx.settings))
    result = {
        "version": version,
        "judged": True,
        "passed": verdict.passed,
        "reasons": verdict.reasons,
        "canary": verdict.canary,
        "production": verdict.production,
        "production_version": str(current),
    }
    ctx.state.update(canary_gate=result)
    if not verdict.passed:
        raise GateFailed(
            f"canary version {version} is not promoted to production: "
            f"{'; '.join(verdict.reasons)}. Everything keeps running: look at the figures, "
            f"then send more traffic or roll the canary back",
            next_step=NextStep("roll the canary back", "revert", {"revert_environment": "canary"}),
        )
    c, p = verdict.canary, verdict.production
    ctx.say(
        f"canary gate passed: version {version} served {c['requests']} requests, "
        f"error rate {c['error_rate']:.2%} (production {p['error_rate']:.2%}), median "
        f"{c['p50_ms']:.1f} ms (production {p['p50_ms']:.1f} ms, same window)"
    )
    return result


def promote_production(ctx: StageContext) -> dict[str, Any]:
    """Gate: canary's version goes to production only on good live figures."""
    version = _promotable(ctx, "production")
    gate = canary_gate(ctx, version)
    return {**_release(ctx, "production", version), "canary_gate": gate}


def revert(ctx: StageContext) -> dict[str, Any]:
    """Put the version the environment served before back (its alias moves back too)."""
    environment = ctx.settings.revert_environment
    history = ctx.state.get("history") or {}
    served = history.get(environment, [])
    if len(served) < 2:
        current = served[-1] if served else None
        ctx.say(f"{environment} has no earlier version to go back to; it keeps {current}")
        return {"environment": environment, "reverted": False, "model_version": current}
    current, previous = served[-1], served[-2]  # consecutive entries always differ
    result = _release(ctx, environment, previous, record=False)
    served.pop()  # only once the earlier version really serves again
    ctx.state.update(history=history)
    ctx.say(f"{environment}: version {current} -> {previous}")
    return {**result, "reverted": True, "from_version": current}


def cleanup(ctx: StageContext) -> dict[str, Any]:
    return cleanup_stage(
        ctx,
        forget=(
            "platform",
            "deployments",
            "history",
            "builds",
            "run_id",
            "candidate_version",
            "router",
            "launcher",
            "canary_gate",
            "evaluations",
        ),
    )


PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage("platform", platform, "MLflow, the training and the evaluation service"),
        Stage("train", train, "start a training run and poll MLflow until it ends", gate=True),
        Stage("evaluate", evaluate, "evaluate the run; register a version if it passes", gate=True),
        Stage("build", build, "bundle the app with that exact model version"),
        Stage(
            "deploy_staging",
            deploy_staging,
            "serve the new version in staging",
            environment="staging",
        ),
        Stage(
            "promote_canary", promote_canary, "staging's version to canary", environment="canary"
        ),
        Stage(
            "promote_production",
            promote_production,
            "canary's version to production, if its live figures are good",
            environment="production",
            gate=True,
        ),
        Stage(
            "revert",
            revert,
            "put the environment's previous version back "
            "(revert_environment, production by default)",
            environment="production",
        ),
        Stage("cleanup", cleanup, "stop every server, remove the store and builds"),
    ],
    backends=REGISTRY,
)
