"""The pipeline on the local backend: full run, idempotent reruns, the gate, cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.servers import ManagedServer
from mlops_helpers.watson_openscale.feedback import FeedbackRejected
from mlops_helpers.watson_openscale.local import store_path
from mlops_helpers.watson_openscale.mlflow_repo import MlflowRepository
from mlops_helpers.watson_openscale.monitor_store import MonitorStore
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.support import leftover_processes
from tests.watson_openscale.conftest import make_context

BEFORE_SCORE = ["setup", "space", "store_model", "deploy", "subscribe"]


def test_two_full_runs_give_one_model_one_deployment_one_subscription(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    try:
        first = PIPELINE.run(ctx)
        assert first["evaluate"]["status"] == "finished"
        assert first["store_model"]["action"] == "created"
        assert first["deploy"]["action"] == "created"
        assert first["subscribe"]["action"] == "created"
        pid = ctx.state.get("deployment")["server"]["pid"]
        second = PIPELINE.run(ctx)
        assert second["store_model"]["action"] == "unchanged"
        assert second["deploy"]["action"] == "unchanged"
        assert second["subscribe"]["action"] == "updated"
        assert second["subscribe"]["monitor_action"] == "updated"
        assert ctx.state.get("deployment")["server"]["pid"] == pid
        repo = MlflowRepository(ctx.run_dir)
        name = first["store_model"]["name"]
        assert len(repo.client.search_registered_models()) == 1
        assert [v.version for v in repo.versions(name)] == [1]
        assert len(repo.spaces(first["space"]["name"])) == 1
        counts = MonitorStore(store_path(ctx.run_dir)).counts()
        assert counts["subscriptions"] == 1 and counts["monitor_instances"] == 1
        assert counts["monitor_runs"] == 2
        # every scoring request was logged once: the score stage's and the monitor's; the
        # rerun sent the same content, so nothing doubled (payload and feedback)
        assert counts["payload_log"] == first["score"]["requests"] + 1
        assert counts["feedback_log"] == first["feedback"]["stored"] == 200
        assert second["feedback"] == {"stored": 0, "already_logged": 200, "label_noise": 0.0}
        assert second["score"]["payload_logged"] == second["score"]["requests"]
        assert (first["promote"]["action"], second["promote"]["action"]) == (
            "promoted", "unchanged")
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert ctx.tracker.list() == []
    assert leftover_processes(str(tmp_path)) == []


def test_cleanup_removes_deployment_versions_subscription_and_space(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    PIPELINE.run(ctx, BEFORE_SCORE)
    server = ManagedServer.from_dict(ctx.state.get("deployment")["server"])
    model = ctx.state.get("model")
    space = ctx.state.get("space")
    assert server.alive()
    result = PIPELINE.run_stage("cleanup", ctx)
    assert len(result["released"]) == 5
    assert not server.alive()
    repo = MlflowRepository(ctx.run_dir)
    assert repo.versions(model["name"]) == []
    assert repo.client.search_registered_models() == []
    assert repo.spaces(space["name"]) == []
    counts = MonitorStore(store_path(ctx.run_dir)).counts()
    assert counts["subscriptions"] == counts["monitor_instances"] == 0
    assert not (ctx.run_dir / "deployments" / "wos-deploy-test").exists()
    assert ctx.state.get("deployment") is None
    assert leftover_processes(str(tmp_path)) == []


def test_new_model_updates_the_deployment_in_place(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    try:
        PIPELINE.run(ctx, BEFORE_SCORE)
        before = ctx.state.get("deployment")
        other = make_context(tmp_path, model_name="digits-classifier")
        # a changed model (different bytes) becomes version 2 of the same registered model
        meta = ctx.state.get("setup")["meta"]
        (Path(ctx.state.get("setup")["model_dir"]) / "model-meta.json").write_text(
            json.dumps({**meta, "note": "retrained"}))
        stored = PIPELINE.run_stage("store_model", other)
        assert (stored["version"], stored["action"]) == ("2", "updated")
        assert stored["versions"] == ["1", "2"]
        deployed = PIPELINE.run_stage("deploy", other)
        assert deployed["action"] == "updated"
        assert deployed["deployment_id"] == before["deployment_id"]
        assert deployed["model_version"] == "2"
        assert not ManagedServer.from_dict(before["server"]).alive()
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert leftover_processes(str(tmp_path)) == []


def test_duplicate_spaces_are_found_and_removed(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    try:
        repo = MlflowRepository(ctx.run_dir)
        name = "wos-space-test"
        ids = [repo.create_space(name) for _ in range(3)]  # what two racing runs leave
        found = PIPELINE.run_stage("space", ctx)
        assert found["experiment_id"] == ids[0] and not found["created"]
        assert len(found["removed_duplicates"]) == 2
        assert [e.experiment_id for e in repo.spaces(name)] == [ids[0]]
        assert PIPELINE.run_stage("space", ctx)["removed_duplicates"] == []
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_gate_fails_on_degraded_feedback_with_metric_value_threshold(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, feedback_label_noise=0.5)
    with pytest.raises(GateFailed, match=r"accuracy 0\.[0-7]\d* is below its lower limit 0\.8"):
        PIPELINE.run(ctx)
    run = ctx.state.get("quality_run")
    accuracy = next(m for m in run["metrics"] if m["metric"] == "accuracy")
    assert accuracy["passed"] is False and accuracy["threshold"] == 0.8
    # the failure tore everything down
    assert ctx.tracker.list() == []
    assert leftover_processes(str(tmp_path)) == []


def test_gate_passes_on_good_feedback_and_threshold_is_a_setting(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    try:
        PIPELINE.run(ctx)
        run = ctx.state.get("quality_run")
        assert all(m["passed"] in (True, None) for m in run["metrics"])
        assert {m["metric"] for m in run["metrics"]} == {
            "accuracy", "weighted_f1", "weighted_precision", "weighted_recall"}
        assert len(run["confusion_matrix"]) == 10 and sum(map(sum, run["confusion_matrix"])) \
            == run["n_rows"] == 200
        # the same good feedback fails a bar nobody can reach, set when the gate runs
        strict = make_context(tmp_path, min_accuracy=0.999)
        with pytest.raises(GateFailed, match=r"accuracy 0\.9\d+ is below its lower limit 0\.999"):
            PIPELINE.run_stage("evaluate", strict)
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_mlflow_loads_the_deployed_model_and_it_predicts(tmp_path: Path) -> None:
    """The registry is MLflow: its own client loads `models:/<name>@deployed`, and the
    scoring server answers as that very artifact does."""
    import mlflow
    import numpy as np

    from mlops_helpers.watson_openscale import payload

    created_before = (Path.cwd() / "mlflow.db").exists()
    ctx = make_context(tmp_path)
    try:
        results = PIPELINE.run(ctx)
        name = results["store_model"]["name"]
        # the run's own store for both (MLflow's default would be ./mlflow.db in the cwd)
        mlflow.set_tracking_uri(ctx.state.get("space")["tracking_uri"])
        mlflow.set_registry_uri(ctx.state.get("space")["tracking_uri"])
        model = mlflow.pyfunc.load_model(f"models:/{name}@deployed")
        assert model.metadata.signature is not None
        assert model.metadata.saved_input_example_info is not None
        example = json.loads((Path(ctx.state.get("setup")["model_dir"])
                              / "input_example.json").read_text())
        rows = np.asarray(example["data"], dtype=float)
        labels = [int(v) for v in model.predict(rows)]
        served = ctx.backend.score(ctx.state.get("deployment"),
                                   payload.from_rows(example["columns"], rows.tolist()))
        assert payload.predictions(served)[0] == labels
    finally:
        PIPELINE.run_stage("cleanup", ctx)
        mlflow.set_tracking_uri("")
        mlflow.set_registry_uri("")
    assert not (Path.cwd() / "mlflow.db").exists() or created_before


def test_too_little_feedback_says_so_instead_of_a_metric(deployed) -> None:
    ctx = deployed
    with pytest.raises(GateFailed, match=r"only 0 feedback row\(s\).*at least 50"):
        PIPELINE.run_stage("evaluate", ctx)
    assert ctx.state.get("quality_run")["metrics"] == []
    store = MonitorStore(store_path(ctx.run_dir))
    runs = store.runs(ctx.state.get("subscription")["monitor_instance_id"])
    assert runs[-1]["status"] == "insufficient_feedback" and runs[-1]["metrics"] == []


def test_feedback_with_a_missing_label_is_refused_and_nothing_stored(deployed) -> None:
    ctx = deployed
    subscription = ctx.state.get("subscription")
    fields = [*subscription["feature_fields"], subscription["label_column"]]
    good = [0.0] * 64 + [3]
    store = MonitorStore(store_path(ctx.run_dir))
    before = store.feedback_count(subscription["subscription_id"])
    for bad in (None, float("nan"), ""):
        with pytest.raises(FeedbackRejected, match=r"missing label .*rows \[1\]"):
            ctx.backend.log_feedback(subscription, fields, [good, [0.0] * 64 + [bad]])
    with pytest.raises(FeedbackRejected, match="no label column 'digit'"):
        ctx.backend.log_feedback(subscription, fields[:-1], [good[:-1]])
    assert store.feedback_count(subscription["subscription_id"]) == before
    assert ctx.backend.log_feedback(subscription, fields, [good]) == 1


def test_payload_log_count_equals_scoring_requests(deployed) -> None:
    ctx = deployed
    subscription = ctx.state.get("subscription")
    before = ctx.backend.payload_count(subscription)
    result = PIPELINE.run_stage("score", make_context(ctx.settings.run_root, score_requests=7,
                                                      rows_per_request=3))
    assert result["requests"] == 7 and result["rows"] == 21
    assert ctx.backend.payload_count(subscription) - before == 7
    assert all(len(p) == 10 for p in result["probabilities"])
    assert sum(a == b for a, b in zip(result["predictions"], result["labels"],
                                      strict=True)) >= 18


def test_stages_out_of_order_say_what_to_run_first(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    with pytest.raises(StageError, match="run the setup stage first"):
        PIPELINE.run_stage("store_model", ctx)
    with pytest.raises(StageError, match="run the subscribe stage first"):
        PIPELINE.run_stage("evaluate", ctx)
