"""The pipeline on the local backend: full run, idempotent reruns, the gate, cleanup, and
the online deployment (WML payloads in, predictions and probabilities out; bad input 4xx).

One module-scoped run (the whole pipeline, twice) is shared: the tests that only read it run
in any order; the two that change it (a new model version; degraded feedback, whose failure
tears everything down) run after them, in that order (``last_in_group``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import StageContext
from mlops_helpers.servers import ManagedServer, http_json
from mlops_helpers.watson_openscale import payload
from mlops_helpers.watson_openscale.feedback import FeedbackRejected
from mlops_helpers.watson_openscale.local import store_path
from mlops_helpers.watson_openscale.mlflow_repo import MlflowRepository
from mlops_helpers.watson_openscale.monitor_store import MonitorStore
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.fixtures.watson_openscale import make_context
from tests.support import leftover_processes


@dataclass
class TwoRuns:
    ctx: StageContext
    first: dict[str, Any]
    second: dict[str, Any]
    first_pid: int
    counts: dict[str, int]  # the monitor's tables right after the second run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    """The whole pipeline run twice in one run directory; cleaned up after the module."""
    root = tmp_path_factory.mktemp("wos-local")
    ctx = make_context(root)
    try:
        first = PIPELINE.run(ctx)
        pid = ctx.state.get("deployment")["server"]["pid"]
        second = PIPELINE.run(ctx)
        yield TwoRuns(ctx, first, second, pid, MonitorStore(store_path(ctx.run_dir)).counts())
    finally:
        PIPELINE.run_stage("cleanup", ctx)
        assert leftover_processes(str(root)) == []


def test_two_full_runs_give_one_model_one_deployment_one_subscription(two_runs) -> None:
    first, second, ctx = two_runs.first, two_runs.second, two_runs.ctx
    assert first["evaluate"]["status"] == "finished"
    assert first["store_model"]["action"] == "created"
    assert first["deploy"]["action"] == "created"
    assert first["subscribe"]["action"] == "created"
    assert second["store_model"]["action"] == "unchanged"
    assert second["deploy"]["action"] == "unchanged"
    assert second["subscribe"]["action"] == "updated"
    assert second["subscribe"]["monitor_action"] == "updated"
    assert ctx.state.get("deployment")["server"]["pid"] == two_runs.first_pid
    repo = MlflowRepository(ctx.run_dir)
    name = first["store_model"]["name"]
    assert len(repo.client.search_registered_models()) == 1
    assert [v.version for v in repo.versions(name)] == [1]
    assert len(repo.spaces(first["space"]["name"])) == 1
    counts = two_runs.counts
    assert counts["subscriptions"] == 1 and counts["monitor_instances"] == 1
    assert counts["monitor_runs"] == 2
    # every scoring request was logged once: the score stage's and the monitor's; the
    # rerun sent the same content, so nothing doubled (payload and feedback)
    assert counts["payload_log"] == first["score"]["requests"] + 1
    assert counts["feedback_log"] == first["feedback"]["stored"] == 200
    assert second["feedback"] == {"stored": 0, "already_logged": 200, "label_noise": 0.0}
    assert second["score"]["payload_logged"] == second["score"]["requests"]
    assert (first["promote"]["action"], second["promote"]["action"]) == ("promoted", "unchanged")


def test_gate_passes_on_good_feedback(two_runs) -> None:
    run = two_runs.first["evaluate"]
    assert all(m["passed"] in (True, None) for m in run["metrics"])
    assert {m["metric"] for m in run["metrics"]} == {
        "accuracy",
        "weighted_f1",
        "weighted_precision",
        "weighted_recall",
    }
    assert (
        len(run["confusion_matrix"]) == 10
        and sum(map(sum, run["confusion_matrix"])) == run["n_rows"] == 200
    )


def test_mlflow_loads_the_deployed_model_and_it_predicts(two_runs) -> None:
    """The registry is MLflow: its own client loads `models:/<name>@deployed`, and the
    scoring server answers as that very artifact does."""
    import mlflow
    import numpy as np

    from mlops_helpers.watson_openscale import payload

    ctx = two_runs.ctx
    created_before = (Path.cwd() / "mlflow.db").exists()
    name = two_runs.first["store_model"]["name"]
    try:
        # the run's own store for both (MLflow's default would be ./mlflow.db in the cwd)
        mlflow.set_tracking_uri(ctx.state.get("space")["tracking_uri"])
        mlflow.set_registry_uri(ctx.state.get("space")["tracking_uri"])
        model = mlflow.pyfunc.load_model(f"models:/{name}@deployed")
        assert model.metadata.signature is not None
        assert model.metadata.saved_input_example_info is not None
        example = json.loads(
            (Path(ctx.state.get("setup")["model_dir"]) / "input_example.json").read_text()
        )
        rows = np.asarray(example["data"], dtype=float)
        labels = [int(v) for v in model.predict(rows)]
        served = ctx.backend.score(
            ctx.state.get("deployment"), payload.from_rows(example["columns"], rows.tolist())
        )
        assert payload.predictions(served)[0] == labels
    finally:
        mlflow.set_tracking_uri("")
        mlflow.set_registry_uri("")
    assert not (Path.cwd() / "mlflow.db").exists() or created_before


def test_feedback_with_a_missing_label_is_refused_and_nothing_stored(two_runs) -> None:
    ctx = two_runs.ctx
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


def test_payload_log_count_equals_scoring_requests(two_runs) -> None:
    ctx = two_runs.ctx
    subscription = ctx.state.get("subscription")
    before = ctx.backend.payload_count(subscription)
    result = PIPELINE.run_stage(
        "score", make_context(ctx.settings.run_root, score_requests=7, rows_per_request=3)
    )
    assert result["requests"] == 7 and result["rows"] == 21
    assert ctx.backend.payload_count(subscription) - before == 7
    assert all(len(p) == 10 for p in result["probabilities"])
    assert sum(a == b for a, b in zip(result["predictions"], result["labels"], strict=True)) >= 18


def test_threshold_is_a_setting_read_when_the_gate_runs(two_runs) -> None:
    # the same good feedback fails a bar nobody can reach, set when the gate runs
    strict = make_context(two_runs.ctx.settings.run_root, min_accuracy=0.999)
    with pytest.raises(GateFailed, match=r"accuracy 0\.9\d+ is below its lower limit 0\.999"):
        PIPELINE.run_stage("evaluate", strict)


def test_too_little_feedback_says_so_instead_of_a_metric(two_runs) -> None:
    root = two_runs.ctx.settings.run_root
    PIPELINE.run_stage("subscribe", make_context(root, min_feedback_data_size=100_000))
    try:
        with pytest.raises(GateFailed, match=r"only \d+ feedback row\(s\).*at least 100000"):
            PIPELINE.run_stage("evaluate", two_runs.ctx)
        assert two_runs.ctx.state.get("quality_run")["metrics"] == []
        store = MonitorStore(store_path(two_runs.ctx.run_dir))
        runs = store.runs(two_runs.ctx.state.get("subscription")["monitor_instance_id"])
        assert runs[-1]["status"] == "insufficient_feedback" and runs[-1]["metrics"] == []
    finally:
        PIPELINE.run_stage("subscribe", make_context(root))


# -- the online deployment (moved here from test_scoring_server.py: it reads the shared
# run's deployment of version 1, so these run before the tests that change it) -----------
@pytest.fixture
def deployed(two_runs: TwoRuns) -> StageContext:
    return two_runs.ctx


def _post(
    ctx: Any, body: Any = None, raw: bytes | None = None, url: str | None = None
) -> tuple[int, Any]:
    return http_json(
        "POST",
        url or ctx.state.get("deployment")["scoring_url"],
        body,
        raw=raw,
        headers={"Content-Type": "application/json"},
    )


def _count(ctx: Any) -> int:
    return int(ctx.backend.payload_count(ctx.state.get("subscription")))


def _fields(ctx: Any) -> list[str]:
    return list(ctx.state.get("subscription")["feature_fields"])


def test_valid_request_gets_predictions_and_probabilities_and_is_logged(deployed) -> None:
    fields = _fields(deployed)
    before = _count(deployed)
    status, answer = _post(deployed, payload.from_rows(fields, [[0.0] * 64, [16.0] * 64]))
    assert status == 200, answer
    block = answer["predictions"][0]
    assert block["fields"] == ["prediction", "probability"]
    for label, probabilities in block["values"]:
        assert 0 <= label <= 9 and len(probabilities) == 10
        assert abs(sum(probabilities) - 1) < 1e-3
        assert probabilities.index(max(probabilities)) == label
    assert _count(deployed) == before + 1
    record = deployed.backend.store.payload_records(
        deployed.state.get("deployment")["deployment_id"], 1
    )[0]
    assert record["n_rows"] == 2 and record["response"] == answer
    assert record["request"]["input_data"][0]["fields"] == fields


def test_fields_in_another_order_are_reordered(deployed) -> None:
    fields = _fields(deployed)
    row = [float(i % 17) for i in range(64)]
    _, straight = _post(deployed, payload.from_rows(fields, [row]))
    _, reversed_ = _post(deployed, payload.from_rows(fields[::-1], [row[::-1]]))
    assert straight == reversed_


BAD = {
    "not json": (None, b"{not json", 400, "not JSON"),
    "no input_data": ({"values": [[1]]}, None, 400, "input_data"),
    "wrong field names": ("rename", None, 400, "unknown ['pixel_x']"),
    "too few features": ("short", None, 400, "row 0 has 63 values"),
    "non-numeric value": ("text", None, 400, "are not finite numbers within"),
    "boolean value": ("bool", None, 400, "not finite numbers"),
    "pandas index column": ("index", None, 400, "pandas index column"),
    "empty values": ("empty", None, 400, "non-empty list of rows"),
}


def _bad_body(kind: Any, fields: list[str]) -> Any:
    row: list[Any] = [1.0] * 64
    if kind == "rename":
        return payload.from_rows([*fields[:-1], "pixel_x"], [row])
    if kind == "short":
        return {"input_data": [{"fields": fields, "values": [row[:-1]]}]}
    if kind in ("text", "bool"):
        row[5] = "dark" if kind == "text" else True
        return {"input_data": [{"fields": fields, "values": [row]}]}
    if kind == "index":
        return {"input_data": [{"fields": ["Unnamed: 0", *fields], "values": [[0, *row]]}]}
    if kind == "empty":
        return {"input_data": [{"fields": fields, "values": []}]}
    return kind


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_request_gets_4xx_with_message_and_is_not_logged(deployed, case: str) -> None:
    body, raw, status, message = BAD[case]
    before = _count(deployed)
    got, answer = _post(deployed, _bad_body(body, _fields(deployed)), raw=raw)
    assert got == status, answer
    assert message in answer["errors"][0]["message"]
    assert _count(deployed) == before
    # and the deployment keeps serving
    ok, _ = _post(deployed, payload.from_rows(_fields(deployed), [[0.0] * 64]))
    assert ok == 200


def test_unknown_deployment_id_is_404(deployed) -> None:
    url = deployed.state.get("deployment")["scoring_url"].replace("/deployments/", "/deployments/x")
    status, answer = _post(deployed, payload.from_rows(_fields(deployed), [[0.0] * 64]), url=url)
    assert status == 404 and "is not served here" in answer["errors"][0]["message"]


def test_health_names_the_served_version(deployed) -> None:
    record = deployed.state.get("deployment")
    status, answer = http_json("GET", record["scoring_url"].split("/ml/")[0] + "/health")
    assert status == 200
    assert answer["model_version"] == record["model_version"] == "1"
    assert answer["deployment_id"] == record["deployment_id"]


@pytest.mark.last_in_group
def test_new_model_updates_the_deployment_in_place(two_runs) -> None:
    ctx = two_runs.ctx
    before = ctx.state.get("deployment")
    other = make_context(ctx.settings.run_root, model_name="digits-classifier")
    # a changed model (different bytes) becomes version 2 of the same registered model
    meta = ctx.state.get("setup")["meta"]
    (Path(ctx.state.get("setup")["model_dir"]) / "model-meta.json").write_text(
        json.dumps({**meta, "note": "retrained"})
    )
    stored = PIPELINE.run_stage("store_model", other)
    assert (stored["version"], stored["action"]) == ("2", "updated")
    assert stored["versions"] == ["1", "2"]
    deployed = PIPELINE.run_stage("deploy", other)
    assert deployed["action"] == "updated"
    assert deployed["deployment_id"] == before["deployment_id"]
    assert deployed["model_version"] == "2"
    assert not ManagedServer.from_dict(before["server"]).alive()


@pytest.mark.last_in_group(1)
def test_degraded_feedback_fails_the_gate_and_the_failure_tears_everything_down(two_runs) -> None:
    """Last: the failed gate's cleanup releases deployment, versions, subscription, space."""
    ctx = two_runs.ctx
    server = ManagedServer.from_dict(ctx.state.get("deployment")["server"])
    model = ctx.state.get("model")
    space = ctx.state.get("space")
    assert server.alive()
    degraded = make_context(ctx.settings.run_root, feedback_label_noise=0.5)
    with pytest.raises(GateFailed, match=r"accuracy 0\.[0-7]\d* is below its lower limit 0\.8"):
        PIPELINE.run(degraded, ["subscribe", "feedback", "evaluate", "promote"])
    run = degraded.state.get("quality_run")
    accuracy = next(m for m in run["metrics"] if m["metric"] == "accuracy")
    assert accuracy["passed"] is False and accuracy["threshold"] == 0.8
    # the failure ran the cleanup stage: everything it started is released (subscription,
    # deployment, its files, the model, the warm runtime, the space)
    released = degraded.state.get("results")["cleanup"]["released"]
    assert len(released) == 6, released
    assert "process:wos-deploy-test-runtime" in released, released
    assert degraded.tracker.list() == []
    assert not server.alive()
    repo = MlflowRepository(ctx.run_dir)
    assert repo.versions(model["name"]) == []
    assert repo.client.search_registered_models() == []
    assert repo.spaces(space["name"]) == []
    counts = MonitorStore(store_path(ctx.run_dir)).counts()
    assert counts["subscriptions"] == counts["monitor_instances"] == 0
    assert not (ctx.run_dir / "deployments" / "wos-deploy-test").exists()
    assert degraded.state.get("deployment") is None
    assert leftover_processes(str(ctx.settings.run_root)) == []


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


def test_stages_out_of_order_say_what_to_run_first(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    with pytest.raises(StageError, match="run the setup stage first"):
        PIPELINE.run_stage("store_model", ctx)
    with pytest.raises(StageError, match="run the subscribe stage first"):
        PIPELINE.run_stage("evaluate", ctx)
