"""continuous_x: an evaluation that registers nothing, and production rolled back."""

from __future__ import annotations

from mlops_helpers.exercises.base import Exercise, RunView


def evaluation_refuses(run: RunView) -> str | None:
    if not run.get("run_id"):
        return "no training run yet: run the cells above (platform, then a release)"
    if not run.refused("evaluate", "below the threshold"):
        return (
            "the evaluation gate has not refused a run yet: train a weaker model (a tiny C) "
            "and evaluate it"
        )
    if run.get("candidate_version") is not None:
        return "a version was registered after the refusal: evaluate again with the higher bar"
    return None


def production_rolled_back(run: RunView) -> str | None:
    history = run.record("history").get("production") or []
    reverted = run.result("revert")
    if not reverted.get("reverted") or reverted.get("environment") != "production":
        if len(history) < 2:
            return "production has served one version only: promote a second one first"
        return "production has not been rolled back yet: run revert for production"
    serving = (run.record("deployments").get("production") or {}).get("model_version")
    if str(serving) != str(reverted.get("model_version")):
        return "production serves another version since the revert: revert production again"
    return None


EXERCISES = [
    Exercise(
        "continuous_x",
        1,
        "An evaluation that registers nothing",
        "Train a model that learns little (a tiny C, so much regularisation) and evaluate "
        "it: the evaluation service refuses it and no model version is registered.",
        6,
        evaluation_refuses,
    ),
    Exercise(
        "continuous_x",
        2,
        "Roll production back",
        "Production serves version 2: put version 1 back with the revert stage, and look at "
        "which version each environment serves now.",
        8,
        production_rolled_back,
    ),
]
