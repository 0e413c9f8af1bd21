"""The ibm backend, driven by the real ibm-watsonx-ai and ibm-watson-openscale clients against
the IBM Cloud double (tests/doubles/ibm_cloud) over HTTPS on loopback.

The whole stage list runs twice in one process (as the notebook does), and with every stage
in its own ``mlops-workshop`` process (as the Jenkinsfile does), then its find-or-create
stages again, each in a fresh process: same end state, no
duplicate space, model, deployment or subscription, and nothing left after cleanup. The
defects the first contact found (no default space in a fresh process, the SDK's wait
returning None, a runtime that cannot load the model) each have a test that fails if they
come back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_helpers.errors import ConfigError, GateFailed, StageError, WaitTimeout
from mlops_helpers.watson_openscale.spec import SCENARIO
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.doubles.ibm_cloud import OLDER_RUNTIMES
from tests.fixtures.watson_openscale import ibm_context

pytestmark = pytest.mark.contract

ONE_OF_EACH = {
    "spaces": 1,
    "models": 1,
    "deployments": 1,
    "service_providers": 1,
    "subscriptions": 1,
}
NOTHING = {
    "spaces": 0,
    "models": 0,
    "deployments": 0,
    "service_providers": 0,
    "subscriptions": 0,
    "monitor_instances": 0,
}


def end_state(double) -> dict[str, int]:
    counts = double.counts()
    counts.pop("monitor_instances")  # quality + the two OpenScale adds by default
    return counts


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlops-workshop")
    env = {
        **os.environ,
        "MLOPS_RUN_ROOT": str(root),
        "MLOPS_ATTENDEE": "test",
        "MLOPS_BACKEND": "ibm",
    }
    return subprocess.run(
        [str(exe), "watson_openscale", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def test_full_stage_list_in_one_process_twice(ibm, tmp_path: Path) -> None:
    log: list[str] = []
    ctx = ibm_context(tmp_path, log)
    try:
        first = PIPELINE.run(ctx)
        assert first["evaluate"]["status"] == "finished"
        assert (
            first["store_model"]["action"],
            first["deploy"]["action"],
            first["subscribe"]["action"],
            first["promote"]["action"],
        ) == ("created", "created", "created", "promoted")
        assert first["score"]["payload_logged"] == first["score"]["requests"]
        assert end_state(ibm) == ONE_OF_EACH
        second = PIPELINE.run(ctx)
        assert (
            second["store_model"]["action"],
            second["deploy"]["action"],
            second["subscribe"]["action"],
            second["promote"]["action"],
        ) == ("unchanged", "unchanged", "updated", "unchanged")
        assert second["feedback"]["stored"] == 0  # the same rows, keyed by content
        assert end_state(ibm) == ONE_OF_EACH
        feedback = [
            ds for ds, d in ibm.openscale.data_sets.items() if d["entity"]["type"] == "feedback"
        ]
        assert len(ibm.openscale.records[feedback[0]]) == first["feedback"]["stored"] == 200
        # WML wrote the payload itself; the backend never posted a payload record
        assert not any(
            r.method == "POST" and r.path.endswith("/records") and b"request" in r.raw
            for r in ibm.log
        )
        deployment = next(iter(ibm.wml.deployments.values()))["entity"]
        assert "production" in deployment["tags"]
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert ibm.counts() == NOTHING
    assert not any(ibm.api_key in line for line in log), "the API key was printed"
    plan = next(line for line in log if "will create (billed while it exists)" in line)
    assert "runtime-25.1-py3.12" in plan and "hardware spec S" in plan


@pytest.mark.slow
def test_every_stage_in_its_own_process_twice(ibm, tmp_path: Path) -> None:
    """A fresh client per stage: each must set the default space itself (it did not).
    The second build reruns, each in a fresh process, the stages that find or create
    something on the service, and the scoring (the in-process test above reruns them all)."""
    every_stage = PIPELINE.stage_names()[:-1]
    find_or_create = ["space", "store_model", "deploy", "subscribe", "score"]
    try:
        for round_, stages in ((1, every_stage), (2, find_or_create)):
            for stage in stages:
                done = cli(tmp_path, stage)
                assert done.returncode == 0, f"round {round_} {stage}:\n{done.stderr[-2000:]}"
                assert ibm.api_key not in done.stdout + done.stderr
            assert end_state(ibm) == ONE_OF_EACH, round_
        assert ibm.calls("POST", r"/ml/v4/deployments") == 1
        assert ibm.calls("POST", r"/openscale/[^/]+/v2/subscriptions") == 1
        scoring = ibm.calls("POST", r"/ml/v4/deployments/[^/]+/predictions")
        assert scoring == 2 * SCENARIO.setting("score_requests").default
    finally:
        done = cli(tmp_path, "cleanup")
    assert done.returncode == 0, done.stderr
    assert ibm.counts() == NOTHING


def test_a_stage_that_waits_forever_times_out_with_a_message(ibm, tmp_path: Path) -> None:
    """The SDK's own wait returned None and the backend indexed it (a TypeError)."""
    ibm.openscale.subscription_polls = None  # the subscription never becomes active
    ctx = ibm_context(tmp_path, subscription_timeout=1.0)
    with pytest.raises(
        WaitTimeout,
        match=r"waiting for subscription of wos-deploy-test; "
        r"last status: preparing",
    ):
        PIPELINE.run(ctx)
    assert ibm.counts() == NOTHING  # the failure cleaned up, subscription included


def test_a_runtime_that_cannot_load_the_model_is_refused_before_storing(
    ibm, tmp_path: Path
) -> None:
    from mlops_helpers.watson_openscale.ibm_runtime import runtime_sklearn

    ibm.wml.runtimes = list(OLDER_RUNTIMES)
    ctx = ibm_context(tmp_path)
    with pytest.raises(StageError) as caught:
        PIPELINE.run(ctx)
    message = str(caught.value)
    assert f"trained with scikit-learn {runtime_sklearn()}" in message
    assert "runtime-24.1-py3.11 (scikit-learn 1.3.0)" in message
    assert ibm.wml.models == {} and ibm.wml.deployments == {}
    assert ibm.counts() == NOTHING


def test_a_deployment_whose_runtime_cannot_unpickle_fails_with_the_reason(
    ibm, tmp_path: Path
) -> None:
    """The double loads the model as WML would: a runtime's other scikit-learn fails."""
    from tests.doubles.ibm_cloud.wml import new_id

    ctx = ibm_context(tmp_path)
    PIPELINE.run(ctx, ["setup", "space", "store_model"])
    model = next(iter(ibm.wml.models.values()))
    older = ibm.wml.spec_id("runtime-24.1-py3.11")
    model["entity"]["software_spec"] = {"id": older, "name": "runtime-24.1-py3.11"}
    assert new_id()  # the double is still answering
    with pytest.raises(
        StageError,
        match=r"deployment wos-deploy-test: .*pickled with "
        r"scikit-learn .* runtime-24\.1-py3\.11 has "
        r"scikit-learn 1\.3\.0",
    ):
        PIPELINE.run_stage("deploy", ctx)
    PIPELINE.run_stage("cleanup", ctx)
    assert ibm.counts() == NOTHING


def test_a_changed_model_is_a_new_revision_and_the_deployment_follows(ibm, tmp_path: Path) -> None:
    ctx = ibm_context(tmp_path)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy"])
        meta = Path(ctx.state.get("setup")["model_dir"]) / "model-meta.json"
        meta.write_text(meta.read_text() + "\n")
        stored = PIPELINE.run_stage("store_model", ctx)
        assert (stored["action"], stored["version"]) == ("updated", "2")
        deployed = PIPELINE.run_stage("deploy", ctx)
        assert (deployed["action"], deployed["model_version"]) == ("updated", "2")
        assert next(iter(ibm.wml.deployments.values()))["entity"]["asset"] == {
            "id": stored["model_id"],
            "rev": "2",
        }
        assert (len(ibm.wml.models), len(ibm.wml.deployments)) == (1, 1)
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert ibm.counts() == NOTHING


def test_duplicate_spaces_are_removed_oldest_kept(ibm, tmp_path: Path) -> None:
    oldest = ibm.wml.add_space("wos-space-test", "2026-01-01T00:00:00.000Z")
    ibm.wml.add_space("wos-space-test", "2026-02-01T00:00:00.000Z")
    ibm.wml.add_space("other-space", "2026-01-01T00:00:00.000Z")
    found = PIPELINE.run_stage("space", ibm_context(tmp_path))
    assert found["space_id"] == oldest and not found["created"]
    assert len(found["removed_duplicates"]) == 1
    assert sorted(s["entity"]["name"] for s in ibm.wml.spaces.values()) == [
        "other-space",
        "wos-space-test",
    ]


def test_a_failed_call_stops_the_stage_and_a_rerun_creates_no_duplicate(
    ibm, tmp_path: Path
) -> None:
    ctx = ibm_context(tmp_path)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model"])
        ibm.faults.inject("POST", r"/ml/v4/deployments", status=503, times=-1)  # retries too
        with pytest.raises(StageError, match="injected failure of POST /ml/v4/deployments"):
            PIPELINE.run_stage("deploy", ctx)
        ibm.faults.clear()
        assert PIPELINE.run_stage("deploy", ctx)["action"] == "created"
        assert len(ibm.wml.deployments) == 1
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert ibm.counts() == NOTHING


def test_the_gate_fails_on_degraded_feedback_and_promote_refuses(ibm, tmp_path: Path) -> None:
    ctx = ibm_context(tmp_path, feedback_label_noise=0.6)
    try:
        with pytest.raises(GateFailed, match=r"accuracy 0\.[0-6]\d* is below its lower limit"):
            PIPELINE.run(ctx, PIPELINE.stage_names()[:-1])
    finally:
        pass  # PIPELINE.run cleaned up after the failure
    assert ibm.counts() == NOTHING


def test_too_little_feedback_is_reported_not_measured(ibm, tmp_path: Path) -> None:
    ctx = ibm_context(tmp_path, feedback_rows=10)
    with pytest.raises(GateFailed, match="fewer than min_feedback_data_size 50"):
        PIPELINE.run(ctx)
    assert ibm.counts() == NOTHING


def test_missing_settings_are_named_together_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("IBM_API_KEY", "IBM_WML_URL", "IBM_OPENSCALE_URL", "IBM_SERVICE_INSTANCE_ID"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"MLOPS_{name}", raising=False)
    monkeypatch.setenv("IBM_WML_URL", "https://127.0.0.1:9")
    ctx = ibm_context(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"ibm_api_key \(IBM_API_KEY\), ibm_openscale_url "
        r"\(IBM_OPENSCALE_URL\), ibm_service_instance_id",
    ):
        PIPELINE.run_stage("setup", ctx)
    assert not (ctx.run_dir / "model").exists(), "setup trained before checking settings"


@pytest.mark.notebook
def test_the_notebook_runs_headless_on_the_ibm_backend(
    ibm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook 03 with backend = "ibm": the kernel gets the settings from the environment
    (never as parameters: nothing secret is written into the executed notebook)."""
    from mlops_helpers.notebooks import run_notebook
    from tests.support import leftover_processes

    monkeypatch.setenv("MLOPS_RUN_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("MLOPS_ATTENDEE", "nb")
    result = run_notebook("watson_openscale", backend="ibm", output_dir=tmp_path)
    assert result.error is None, result.error
    executed = result.output.read_text()
    assert ibm.api_key not in executed
    assert "will create (billed while it exists)" in executed
    assert "promoted digits-classifier-nb version 1 to production" in executed
    # the degraded-feedback cell: the monitor's gate and then promote say no, in one line each
    assert "gate failed: quality monitor: accuracy" in executed
    assert "gate failed: the quality gate failed for version 1" in executed
    assert ibm.counts() == NOTHING
    assert leftover_processes(str(tmp_path / "runs")) == []
