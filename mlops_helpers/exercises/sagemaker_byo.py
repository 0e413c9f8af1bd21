"""sagemaker_byo: a smoke test that refuses the model, and production that holds."""

from __future__ import annotations

from mlops_helpers.exercises.base import Exercise, RunView


def smoke_test_refuses(run: RunView) -> str | None:
    digest = run.get("model_digest")
    if not digest:
        return "there is no trained model yet: run the stages above, from build to smoke_test"
    if not run.refused("smoke_test", "below the threshold"):
        return (
            "the smoke test has not refused this model yet: run smoke_test with a "
            "min_accuracy above the accuracy it reached"
        )
    verdict = run.record("smoke_test")
    if verdict.get("passed") is not False or verdict.get("model_digest") != digest:
        return "the latest smoke-test verdict is not a refusal of the current model: run it again"
    return None


def production_holds(run: RunView) -> str | None:
    if not run.result("deploy_prod"):
        return "no model reached production yet: run deploy_prod once while the smoke test passes"
    if run.record("smoke_test").get("passed") is not False:
        return "do exercise 1 first: the current model's smoke test must have failed"
    if not run.refused("deploy_prod", "has not passed the smoke test"):
        return "deploy_prod has not refused the refused model yet: run deploy_prod now"
    return None


EXERCISES = [
    Exercise(
        "sagemaker_byo",
        1,
        "Make the smoke test refuse the model",
        "Run the smoke test again with a min_accuracy above what this model reaches: the gate "
        "must say no, with the accuracy and the threshold.",
        8,
        smoke_test_refuses,
    ),
    Exercise(
        "sagemaker_byo",
        2,
        "Production holds",
        "Try to deploy the refused model to production: deploy_prod reads the recorded verdict "
        "for this digest and refuses; production keeps serving.",
        5,
        production_holds,
    ),
]
