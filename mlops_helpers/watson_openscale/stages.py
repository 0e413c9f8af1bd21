"""The watson_openscale pipeline: setup, space, store_model, deploy, subscribe, score,
feedback, evaluate (the quality gate), cleanup. The notebook, the CLI and both Jenkinsfiles
run these same stages.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.waiting import wait_until
from mlops_helpers.watson_openscale import feedback as feedback_rows
from mlops_helpers.watson_openscale import ibm as _ibm  # noqa: F401  (registers "ibm")
from mlops_helpers.watson_openscale import local as _local  # noqa: F401  (registers "local")
from mlops_helpers.watson_openscale import payload, quality
from mlops_helpers.watson_openscale.model_source import load_model_module
from mlops_helpers.watson_openscale.registry import (
    REGISTRY,
    deployment_name,
    model_name,
    space_name,
)

SCENARIO = "watson_openscale"
HELD_OUT_CSV = "held_out_data.csv"  # setup's held-out rows, with labels: score and feedback


def _need(ctx: StageContext, key: str, stage: str) -> Any:
    value = ctx.state.get(key)
    if value is None:
        raise StageError(f"no {key} in {ctx.run_dir}: run the {stage} stage first")
    return value


def _split(ctx: StageContext) -> tuple[Any, Any, dict[str, Any]]:
    module = load_model_module()
    config = module.load_config()
    return module, module.load_data(config), config


def _held_out(ctx: StageContext) -> tuple[Any, list[int]]:
    """The held-out rows setup wrote (features as a frame, and their labels): score and
    feedback read them instead of splitting the data again, each in its own process."""
    import pandas as pd

    meta = _need(ctx, "setup", "setup")["meta"]
    frame = pd.read_csv(ctx.run_dir / "data" / HELD_OUT_CSV)
    return frame[meta["feature_fields"]], frame[meta["label_column"]].astype(int).tolist()


def setup(ctx: StageContext) -> dict[str, Any]:
    """Check the backend can run, then train the data scientist's model and write what the
    later stages need (a missing setting fails here, before any training)."""
    # before the heavy imports, so a missing setting or a dead service fails at once
    checked = ctx.backend.preflight(ctx.backend.model_sklearn())
    import pandas as pd

    module, split, config = _split(ctx)
    model_dir = ctx.run_dir / "model"
    trained = ctx.backend.train_model(module, split, config, model_dir / "model.joblib")
    held_out = trained["held_out_accuracy"]
    label = config["label_column"]
    meta = {
        "model_name": config["model_name"],
        "feature_fields": split.feature_names,
        "label_column": label,
        "problem_type": config["problem_type"],
        "classes": sorted(int(c) for c in set(split.y_train)),
        "estimator": json.dumps(config.get("estimator", {}), sort_keys=True),
        "sklearn_version": trained["sklearn_version"],
    }
    (model_dir / "model-meta.json").write_text(json.dumps(meta, indent=2))
    (model_dir / "input_example.json").write_text(
        json.dumps({"columns": split.feature_names, "data": split.X_train[:2].tolist()})
    )
    data_dir = ctx.run_dir / "data"
    data_dir.mkdir(exist_ok=True)
    for rows, targets, name in (
        (split.X_train, split.y_train, "training_data.csv"),
        (split.X_test, split.y_test, HELD_OUT_CSV),
    ):
        frame = pd.DataFrame(rows, columns=split.feature_names)
        frame[label] = targets
        frame.to_csv(data_dir / name, index=False)  # no index column
    _write_cpdctl_inputs(ctx, model_dir, data_dir, split, meta)
    ctx.state.update(
        setup={"model_dir": str(model_dir), "meta": meta, "held_out_accuracy": held_out}
    )
    ctx.say(f"trained {config['model_name']}: held-out accuracy {held_out:.3f}")
    return {
        "model_dir": str(model_dir),
        "held_out_accuracy": held_out,
        "n_train": len(split.y_train),
        "n_features": len(split.feature_names),
        **checked,
    }


def _write_cpdctl_inputs(
    ctx: StageContext, model_dir: Any, data_dir: Any, split: Any, meta: dict[str, Any]
) -> None:
    """What Jenkinsfile.cpdctl uploads: the model archive, a payload, feedback rows."""
    import tarfile

    with tarfile.open(model_dir.parent / "model.tar.gz", "w:gz") as tar:
        tar.add(model_dir / "model.joblib", arcname="model.joblib")
    per = ctx.settings.rows_per_request
    body = payload.from_rows(meta["feature_fields"], split.X_test[:per].tolist())
    (data_dir / "scoring_payload.json").write_text(json.dumps(body))
    count = min(ctx.settings.feedback_rows, len(split.y_test))
    rows = [
        [*x, int(y)]
        for x, y in zip(split.X_test[:count].tolist(), split.y_test[:count], strict=True)
    ]
    (data_dir / "feedback.json").write_text(
        json.dumps([{"fields": [*meta["feature_fields"], meta["label_column"]], "values": rows}])
    )
    (data_dir / "asset_properties.json").write_text(
        json.dumps(
            {
                "label_column": meta["label_column"],
                "feature_fields": meta["feature_fields"],
                "categorical_fields": [],
                "prediction_field": "prediction",
                "probability_fields": ["probability"],
            }
        )
    )


def space(ctx: StageContext) -> dict[str, Any]:
    name = space_name(ctx.settings)
    found = ctx.backend.ensure_space(name)
    if found["removed_duplicates"]:
        ctx.say(f"space {name}: removed {len(found['removed_duplicates'])} duplicate(s)")
    ctx.state.update(space=found)
    ctx.say(f"space {name} ({'created' if found['created'] else 'found'}): {found['space_id']}")
    return found


def store_model(ctx: StageContext) -> dict[str, Any]:
    from pathlib import Path

    prepared = _need(ctx, "setup", "setup")
    found = _need(ctx, "space", "space")
    name = model_name(ctx.settings, prepared["meta"]["model_name"])
    model = ctx.backend.store_model(found, name, Path(prepared["model_dir"]), prepared["meta"])
    ctx.state.update(model=model)
    ctx.say(f"model {name} version {model['version']} ({model['action']})")
    return model


def deploy(ctx: StageContext) -> dict[str, Any]:
    model = _need(ctx, "model", "store_model")
    record = ctx.backend.deploy(_need(ctx, "space", "space"), model, deployment_name(ctx.settings))
    ctx.state.update(deployment={k: v for k, v in record.items() if k != "action"})
    ctx.say(
        f"deployment {record['name']} serves version {record['model_version']} "
        f"({record['action']}) at {record['scoring_url']}"
    )
    return {k: v for k, v in record.items() if k != "server"}


def subscribe(ctx: StageContext) -> dict[str, Any]:
    deployment = _need(ctx, "deployment", "deploy")
    meta = _need(ctx, "setup", "setup")["meta"]
    schema = {
        "label_column": meta["label_column"],
        "problem_type": meta["problem_type"],
        "feature_fields": meta["feature_fields"],
        "fields": [{"name": f, "type": "double"} for f in meta["feature_fields"]]
        + [{"name": meta["label_column"], "type": "integer"}],
    }
    parameters = {
        "min_feedback_data_size": ctx.settings.min_feedback_data_size,  # declared >= 1
        "max_rows_per_evaluation": ctx.settings.max_rows_per_evaluation,
    }
    thresholds = quality.thresholds_from(ctx.settings)
    subscription = ctx.backend.subscribe(
        deployment, _need(ctx, "model", "store_model"), schema, parameters, thresholds
    )
    ctx.state.update(subscription=subscription)
    ctx.say(
        f"subscription {subscription['subscription_id']} ({subscription['action']}); "
        f"quality monitor with {len(thresholds)} lower limit(s) "
        f"({subscription['monitor_action']})"
    )
    return subscription


def score(ctx: StageContext) -> dict[str, Any]:
    """Score held-out rows (built without an index column) and check the payload log."""
    deployment = _need(ctx, "deployment", "deploy")
    subscription = _need(ctx, "subscription", "subscribe")
    frame, truth = _held_out(ctx)
    requests = ctx.settings.score_requests
    per = ctx.settings.rows_per_request
    labels: list[int] = []
    probabilities: list[list[float]] = []
    bodies = [payload.from_frame(frame.iloc[i * per : (i + 1) * per]) for i in range(requests)]
    for body in bodies:
        got = payload.predictions(ctx.backend.score(deployment, body))
        labels += got[0]
        probabilities += got[1]
    # every request must be in the payload log (the write-up slept and hoped); matched by
    # content, so a rerun finds its requests without logging them twice
    logged = wait_until(
        lambda: ctx.backend.payload_logged(subscription, bodies),
        what=f"payload log of {deployment['name']}",
        timeout=ctx.settings.payload_timeout,
        interval=ctx.backend.poll_interval,
        until=lambda n: n >= len(bodies),
        describe=lambda n: f"{n} of {len(bodies)} requests logged",
        progress=False,
    )
    truth = truth[: len(labels)]
    ctx.say(
        f"scored {len(labels)} rows in {requests} requests; {logged} of them in the payload log"
    )
    return {
        "requests": requests,
        "rows": len(labels),
        "predictions": labels,
        "probabilities": probabilities,
        "labels": truth,
        "payload_logged": logged,
    }


def feedback(ctx: StageContext) -> dict[str, Any]:
    """Log labelled held-out rows; ``feedback_label_noise`` > 0 corrupts some labels."""
    subscription = _need(ctx, "subscription", "subscribe")
    frame, truth = _held_out(ctx)
    count = min(ctx.settings.feedback_rows, len(truth))
    noise = ctx.settings.feedback_label_noise
    labels = feedback_rows.degrade(truth[:count], noise, n_classes=10)
    fields = [*frame.columns, _need(ctx, "setup", "setup")["meta"]["label_column"]]
    rows = [[*x, y] for x, y in zip(frame.to_numpy()[:count].tolist(), labels, strict=True)]
    stored = ctx.backend.log_feedback(subscription, fields, rows)
    ctx.say(
        f"feedback: {stored} new labelled rows logged, {len(rows) - stored} already there "
        f"(label noise {noise:.0%})"
    )
    return {"stored": stored, "already_logged": len(rows) - stored, "label_noise": noise}


def evaluate(ctx: StageContext) -> dict[str, Any]:
    """Gate: a quality monitor run against the thresholds as they are now; the verdict is
    recorded for this very model version, so `promote` (in any later process) can check it."""
    subscription = _need(ctx, "subscription", "subscribe")
    model = _need(ctx, "model", "store_model")
    thresholds = quality.thresholds_from(ctx.settings)  # read when the gate runs
    ctx.state.pop("gate")  # no verdict while the run is under way
    run = ctx.backend.run_quality_monitor(subscription, thresholds)
    ctx.state.update(quality_run=run)
    failed = (
        [f"quality monitor: {run['message']}"]
        if run["status"] != "finished"
        else quality.failures(run["metrics"])
    )
    ctx.state.update(
        gate={
            "passed": not failed,
            "model_name": model["name"],
            "model_version": model["version"],
            "digest": model["digest"],
            "deployment_id": subscription["deployment_id"],
            "thresholds": thresholds,
            "run_id": run.get("run_id"),
            "reasons": failed,
        }
    )
    if failed:
        raise GateFailed(
            "quality monitor: " + "; ".join(f.removeprefix("quality monitor: ") for f in failed)
        )
    shown = ", ".join(
        f"{m['metric']} {m['value']:.3f}"
        + (f" (≥ {m['threshold']})" if m["threshold"] is not None else "")
        for m in run["metrics"]
    )
    ctx.say(f"quality gate passed on {run['n_rows']} feedback rows (higher is better): {shown}")
    return run


def promote(ctx: StageContext) -> dict[str, Any]:
    """Make the candidate the production model, only if the gate passed for this very
    version (same digest, same deployment); otherwise refuse and say why."""
    model = _need(ctx, "model", "store_model")
    deployment = _need(ctx, "deployment", "deploy")
    gate = ctx.state.get("gate")
    if gate is None:
        raise GateFailed("no quality gate verdict for this model: run evaluate first")
    if not gate["passed"]:
        raise GateFailed(
            "the quality gate failed for version "
            f"{gate['model_version']}: {'; '.join(gate['reasons'])}"
        )
    if (gate["digest"], gate["model_version"], gate["deployment_id"]) != (
        model["digest"],
        model["version"],
        deployment["deployment_id"],
    ):
        raise GateFailed(
            f"the quality gate passed for version {gate['model_version']}, but "
            f"the candidate is now version {model['version']}: run evaluate "
            "for it first"
        )
    result = ctx.backend.promote(model, deployment)
    ctx.state.update(
        production={
            "model_name": model["name"],
            "model_version": model["version"],
            "digest": model["digest"],
        }
    )
    ctx.say(
        f"promoted {model['name']} version {model['version']} to production ({result['action']})"
    )
    return result


def cleanup(ctx: StageContext) -> dict[str, Any]:
    # the last monitor run's results stay in state: they describe what happened
    return cleanup_stage(
        ctx,
        forget=("deployment", "subscription", "model", "space", "gate", "production", "runtime"),
    )


PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage("setup", setup, "train the model module's model and write its training data"),
        Stage("space", space, "find or create the deployment space; remove duplicates"),
        Stage("store_model", store_model, "store the model as a new version of one model"),
        Stage(
            "deploy",
            deploy,
            "create or update the online deployment of the candidate",
            environment="staging",
        ),
        Stage(
            "subscribe",
            subscribe,
            "create or update the monitor subscription and thresholds",
            environment="staging",
        ),
        Stage("score", score, "score held-out rows; check the payload log", environment="staging"),
        Stage("feedback", feedback, "log labelled feedback rows", environment="staging"),
        Stage(
            "evaluate",
            evaluate,
            "quality monitor run: metrics against thresholds",
            gate=True,
            environment="staging",
        ),
        Stage(
            "promote",
            promote,
            "make the gated candidate the production model",
            environment="production",
        ),
        Stage("cleanup", cleanup, "delete subscription, deployment, model versions and space"),
    ],
    backends=REGISTRY,
)
