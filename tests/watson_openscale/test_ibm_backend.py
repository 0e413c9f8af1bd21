"""The ibm backend's call sequence, against fakes at the two SDK clients' boundary.

The fakes (fake_ibm.py) answer in the SDKs' shapes and record every call, so these tests
check what the backend asks of watsonx.ai and OpenScale, in which order, and that reruns
find instead of create.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.errors import ConfigError, GateFailed
from mlops_helpers.pipeline import StageContext
from mlops_helpers.watson_openscale.ibm import IbmBackend
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.watson_openscale.conftest import make_context
from tests.watson_openscale.fake_ibm import Calls, FakeWml, FakeWos

API_KEY = "fake-key-for-tests-0000"
SETTINGS = {"backend": "ibm", "ibm_api_key": API_KEY, "ibm_wml_url": "wml.invalid",
            "ibm_openscale_url": "wos.invalid", "poll_interval": 0.01}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[Calls, FakeWml, FakeWos]:
    calls = Calls()
    wml, wos = FakeWml(calls), FakeWos(calls)
    monkeypatch.setattr(IbmBackend, "wml_factory", staticmethod(lambda settings: wml))
    monkeypatch.setattr(IbmBackend, "wos_factory", staticmethod(lambda settings: wos))
    # the cleanup process reads its settings from the environment, as Jenkins passes them
    for key, value in SETTINGS.items():
        monkeypatch.setenv(f"MLOPS_{key.upper()}", str(value))
    return calls, wml, wos


def ibm_context(root: Path, log: list[str] | None = None, **params: Any) -> StageContext:
    ctx = make_context(root, **SETTINGS, **params)
    if log is not None:
        ctx.log = log.append
    return ctx


def test_first_run_call_sequence(fakes, tmp_path: Path) -> None:
    calls, wml, wos = fakes
    log: list[str] = []
    ctx = ibm_context(tmp_path, log)
    results = PIPELINE.run(ctx)
    assert results["evaluate"]["status"] == "finished"
    expected = [
        "wml.spaces.get_details", "wml.spaces.store", "wml.set.default_space",
        "wml.set.default_space", "wml.repository.get_model_details",
        "wml.software_specifications.get_id_by_name", "wml.repository.store_model",
        "wml.deployments.get_details", "wml.deployments.create", "wml.deployments.get_details",
        "wml.deployments.get_details",  # initializing, then ready: a bounded wait
        "wos.data_marts.list",  # no ibm_service_instance_id set: the first data mart
        "wos.service_providers.list", "wos.service_providers.add", "wos.subscriptions.list",
        "wos.subscriptions.add", "wos.subscriptions.get", "wos.monitor_instances.list",
        "wos.monitor_instances.create",
    ]
    assert calls[:len(expected)] == expected
    rest = calls[len(expected):]
    # score: payload count, then per request score + payload record, then the count again
    requests = results["score"]["requests"]
    assert rest.count("wml.deployments.score") == requests
    assert rest.count("wos.data_sets.store_records") == requests + 1  # + the feedback batch
    assert rest[-2:] == ["wos.monitor_instances.run", "wos.monitor_instances.list_measurements"]
    assert results["score"]["payload_logged"] == requests
    # payloads carry the model's 64 fields and no index column
    fields = wml.scored[0]["input_data"][0]["fields"]
    assert len(fields) == 64 and "Unnamed: 0" not in fields and "index" not in fields
    # the monitor got the write-up's threshold and our parameters
    monitor = wos.monitors_db[0]["entity"]
    assert {"metric_id": "accuracy", "type": "lower_limit", "value": 0.8} in monitor["thresholds"]
    assert monitor["parameters"] == {"min_feedback_data_size": 50, "max_rows_per_evaluation": 1000}
    # the service provider was looked up by the space, then bound to it
    assert wos.providers[0]["entity"]["deployment_space_id"] == results["space"]["space_id"]
    assert not any(API_KEY in line for line in log), "the API key was printed"
    assert any("will create (billed while it exists)" in line for line in log)
    PIPELINE.run_stage("cleanup", ctx)


def test_second_run_finds_instead_of_creating(fakes, tmp_path: Path) -> None:
    calls, wml, wos = fakes
    ctx = ibm_context(tmp_path)
    PIPELINE.run(ctx)
    calls.clear()
    second = PIPELINE.run(ctx)
    for creating in ("wml.spaces.store", "wml.repository.store_model",
                     "wml.deployments.create", "wml.deployments.update",
                     "wos.service_providers.add", "wos.subscriptions.add",
                     "wos.monitor_instances.create", "wml.repository.create_model_revision"):
        assert creating not in calls, creating
    assert "wos.monitor_instances.update" in calls
    assert second["store_model"]["action"] == "unchanged"
    assert second["deploy"]["action"] == "unchanged"
    assert (len(wml.spaces_db), len(wml.models_db), len(wml.deployments_db),
            len(wos.subscriptions_db), len(wos.monitors_db)) == (1, 1, 1, 1, 1)
    PIPELINE.run_stage("cleanup", ctx)


def test_changed_model_is_a_new_revision_and_the_deployment_is_updated(
    fakes, tmp_path: Path
) -> None:
    calls, wml, _ = fakes
    ctx = ibm_context(tmp_path)
    PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy"])
    meta_file = Path(ctx.state.get("setup")["model_dir"]) / "model-meta.json"
    meta_file.write_text(meta_file.read_text() + "\n")
    stored = PIPELINE.run_stage("store_model", ctx)
    assert (stored["action"], stored["version"]) == ("updated", "2")
    assert calls[-2:] == ["wml.repository.update_model", "wml.repository.create_model_revision"]
    deployed = PIPELINE.run_stage("deploy", ctx)
    assert deployed["action"] == "updated" and "wml.deployments.update" in calls
    assert wml.deployments_db[0]["entity"]["asset"] == {"id": stored["model_id"], "rev": "2"}
    assert len(wml.models_db) == len(wml.deployments_db) == 1
    PIPELINE.run_stage("cleanup", ctx)


def test_duplicate_spaces_are_removed_oldest_kept(fakes, tmp_path: Path) -> None:
    calls, wml, _ = fakes
    oldest = wml.add_space("wos-space-test", "2026-01-01T00:00:00Z")
    wml.add_space("wos-space-test", "2026-02-01T00:00:00Z")
    wml.add_space("other-space", "2026-01-01T00:00:00Z")
    found = PIPELINE.run_stage("space", ibm_context(tmp_path))
    assert found["space_id"] == oldest and not found["created"]
    assert len(found["removed_duplicates"]) == 1
    assert sorted(s["entity"]["name"] for s in wml.spaces_db) == ["other-space", "wos-space-test"]
    assert "wml.spaces.store" not in calls


def test_cleanup_deletes_subscription_deployment_model_and_created_space(
    fakes, tmp_path: Path
) -> None:
    calls, wml, wos = fakes
    ctx = ibm_context(tmp_path)
    PIPELINE.run(ctx)
    calls.clear()
    PIPELINE.run_stage("cleanup", ctx)
    assert calls == ["wos.subscriptions.delete", "wml.set.default_space",
                     "wml.deployments.delete", "wml.set.default_space",
                     "wml.repository.delete", "wml.spaces.delete"]
    assert wml.deployments_db == wml.models_db == wml.spaces_db == wos.subscriptions_db == []


def test_gate_fails_on_low_accuracy_with_metric_value_threshold(fakes, tmp_path: Path) -> None:
    _, _, wos = fakes
    wos.accuracy = 0.42
    ctx = ibm_context(tmp_path)
    with pytest.raises(GateFailed, match=r"accuracy 0\.4200 is below its lower limit 0\.8"):
        PIPELINE.run(ctx)
    assert ctx.tracker.list() == []  # the failure cleaned up the paid resources


def test_too_little_feedback_is_reported_not_measured(fakes, tmp_path: Path) -> None:
    _, _, wos = fakes
    wos.run_failure = "There are 3 feedback records, below min_feedback_data_size 50"
    with pytest.raises(GateFailed, match="below min_feedback_data_size 50"):
        PIPELINE.run(ibm_context(tmp_path))


def test_deployment_that_fails_stops_with_the_reason(fakes, tmp_path: Path) -> None:
    _, wml, _ = fakes
    wml.deploy_states = ["initializing", "failed"]
    from mlops_helpers.errors import StageError

    with pytest.raises(StageError, match="deployment wos-deploy-test: deployment failed"):
        PIPELINE.run(ibm_context(tmp_path))


def test_missing_credentials_name_the_setting(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = make_context(tmp_path, backend="ibm", ibm_wml_url="wml.invalid",
                       ibm_openscale_url="wos.invalid")
    with pytest.raises(ConfigError, match="IBM_API_KEY"):
        _ = ctx.backend
