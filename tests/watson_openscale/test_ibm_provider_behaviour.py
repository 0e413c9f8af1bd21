"""Round two of first contact: where IBM's services behave as their SDKs' own code and
references say, not as the first double assumed (tests/doubles/ibm_cloud cites each source).

Each test here failed against the double and code before the correction: payload records
read back as flat columns, feedback stored asynchronously, a failed asset update that leaves
the deployment ready on the previous revision, the hardware specification sent, IAM tokens
that expire, and 429 answers with Retry-After.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlops_helpers.errors import StageError
from mlops_helpers.waiting import wait_until
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.fixtures.watson_openscale import ibm_context

pytestmark = pytest.mark.contract

UP_TO_SCORE = ["setup", "space", "store_model", "deploy", "subscribe", "score"]


def test_payload_rows_are_read_back_in_the_shape_the_sdk_returns(ibm, tmp_path: Path) -> None:
    """``format="dict"`` gives one flat row per scored row (``entity.values``); the score
    stage finds its requests there (it looked for ``request`` and waited out its 120 s)."""
    ctx = ibm_context(tmp_path, payload_timeout=20.0)
    try:
        scored = PIPELINE.run(ctx, UP_TO_SCORE)["score"]
        assert scored["payload_logged"] == scored["requests"] == 5
        # the real SDK's own reader of the same records agrees: a table of flat columns
        frame = ctx.backend.wos.data_sets.get_list_of_records(
            data_set_id=ctx.backend._data_set(ctx.state.get("subscription"), "payload_logging"),
            output_type="pandas",
        ).result
        meta = ctx.state.get("setup")["meta"]
        assert len(frame) == scored["rows"] == 20
        assert set(meta["feature_fields"]) | {"prediction", "scoring_id"} <= set(frame.columns)
        assert frame["prediction"].tolist() == scored["predictions"]
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_feedback_lands_later_and_the_stage_waits_for_it(ibm, tmp_path: Path) -> None:
    """OpenScale answers a store with 202 and a request to follow; the rows appear when it
    is done. A monitor run started at once saw no feedback and the gate failed."""
    ibm.openscale.store_polls = 3
    ctx = ibm_context(tmp_path)
    try:
        stages = ["setup", "space", "store_model", "deploy", "subscribe", "feedback", "evaluate"]
        results = PIPELINE.run(ctx, stages)
        assert results["feedback"]["stored"] == 200
        assert results["evaluate"]["status"] == "finished"
        assert results["evaluate"]["n_rows"] == 200
        assert ibm.calls("GET", r"/openscale/[^/]+/v2/data_sets/[^/]+/requests/[^/]+") >= 3
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_a_failed_update_is_reported_and_the_previous_revision_keeps_serving(
    ibm, tmp_path: Path
) -> None:
    """WML reverts a deployment whose new asset cannot load: ``ready`` again, on the old
    revision, with a ``failure``. The deploy stage reported that as "updated"."""
    ctx = ibm_context(tmp_path)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy"])
        meta = Path(ctx.state.get("setup")["model_dir"]) / "model-meta.json"
        meta.write_text(meta.read_text() + "\n")
        assert PIPELINE.run_stage("store_model", ctx)["version"] == "2"
        model = next(iter(ibm.wml.models.values()))  # revision 2 now needs an older runtime
        model["entity"]["software_spec"] = {
            "id": ibm.wml.spec_id("runtime-24.1-py3.11"),
            "name": "runtime-24.1-py3.11",
        }
        with pytest.raises(
            StageError,
            match=r"update of deployment wos-deploy-test to revision 2 failed "
            r"\(.*scikit-learn 1\.3\.0 .*\); it still serves revision 1",
        ):
            PIPELINE.run_stage("deploy", ctx)
        deployment = next(iter(ibm.wml.deployments.values()))["entity"]
        assert deployment["asset"]["rev"] == "1" and deployment["status"]["state"] == "ready"
        assert ctx.state.get("deployment")["model_version"] == "1"  # nothing recorded as done
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    assert ibm.counts()["deployments"] == 0


def test_the_hardware_spec_setting_is_sent_and_a_wrong_one_refused(ibm, tmp_path: Path) -> None:
    ctx = ibm_context(tmp_path, ibm_hardware_spec="M")
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy"])
        deployment = next(iter(ibm.wml.deployments.values()))["entity"]
        assert deployment["hardware_spec"] == {"name": "M"}
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    wrong = ibm_context(tmp_path, ibm_hardware_spec="HUGE")
    with pytest.raises(StageError, match="hardware_spec .*HUGE.* is not one of XXS, XS, S, M"):
        PIPELINE.run(wrong, ["setup", "space", "store_model", "deploy"])
    assert ibm.counts()["deployments"] == 0


def test_expired_tokens_are_refreshed_by_both_clients(ibm, tmp_path: Path) -> None:
    """Two-second IAM tokens: half way through, every token issued so far has expired;
    the rest of the stage list still runs (each client fetched new ones in time)."""
    ibm.wml.token_lifetime = 2
    ctx = ibm_context(tmp_path)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy", "subscribe"])
        issued = ibm.wml.tokens_issued
        latest = max(ibm.wml.tokens.values())
        wait_until(
            time.time,
            what="the clients' tokens to expire",
            timeout=10,
            interval=0.2,
            until=lambda now: now > latest + 1,
            progress=False,
        )
        results = PIPELINE.run(ctx, ["score", "feedback", "evaluate", "promote"])
        assert results["evaluate"]["status"] == "finished"
        assert ibm.wml.tokens_issued > issued  # new tokens, fetched after the old expired
        assert ibm.refused_expired == 0  # no client sent an expired one
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_a_429_is_sent_again_after_its_retry_after(ibm, tmp_path: Path) -> None:
    ibm.faults.inject("POST", r"/ml/v4/deployments", status=429, retry_after=1, times=2)
    ibm.faults.inject(
        "POST", r"/openscale/[^/]+/v2/subscriptions", status=429, retry_after=1, times=1
    )
    ctx = ibm_context(tmp_path)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy", "subscribe"])
        assert ibm.calls("POST", r"/ml/v4/deployments") == 3
        assert ibm.calls("POST", r"/openscale/[^/]+/v2/subscriptions") == 2
        assert (len(ibm.wml.deployments), len(ibm.openscale.subscriptions)) == (1, 1)
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_a_retry_after_beyond_the_bound_fails_at_once_with_the_429(ibm, tmp_path: Path) -> None:
    ibm.faults.inject("POST", r"/ml/v4/deployments", status=429, retry_after=3600, times=1)
    ibm.faults.inject(
        "POST", r"/openscale/[^/]+/v2/subscriptions", status=429, retry_after=3600, times=1
    )
    ctx = ibm_context(tmp_path, ibm_retry_after_max=5)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model"])
        with pytest.raises(StageError, match="429"):
            PIPELINE.run_stage("deploy", ctx)
        assert ibm.calls("POST", r"/ml/v4/deployments") == 1  # not sent again: no wait
        assert PIPELINE.run_stage("deploy", ctx)["action"] == "created"
        with pytest.raises(StageError, match="429"):
            PIPELINE.run_stage("subscribe", ctx)
        assert ibm.calls("POST", r"/openscale/[^/]+/v2/subscriptions") == 1
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_the_project_environment_deploys_on_ibms_published_runtimes(ibm, tmp_path: Path) -> None:
    """The lock's scikit-learn is newer than any runtime IBM lists (the double lists only
    IBM's: 1.3 and 1.6); the model is trained in the runtime's environment (make install),
    so the ibm backend works from the project's own checkout. Training here instead is
    refused before anything is stored, naming the setting that picks the environment."""
    from importlib.metadata import version

    from mlops_helpers.watson_openscale.ibm_runtime import runtime_sklearn

    assert version("scikit-learn").split(".")[:2] != runtime_sklearn().split(".")[:2]
    ctx = ibm_context(tmp_path)
    try:
        PIPELINE.run(ctx, ["setup", "space", "store_model", "deploy"])
        assert ctx.state.get("setup")["meta"]["sklearn_version"] == runtime_sklearn()
        model = next(iter(ibm.wml.models.values()))["entity"]
        assert model["software_spec"]["name"] == "runtime-25.1-py3.12"
        assert next(iter(ibm.wml.deployments.values()))["entity"]["status"]["state"] == "ready"
    finally:
        PIPELINE.run_stage("cleanup", ctx)
    here = ibm_context(tmp_path / "here", ibm_model_runtime="project")
    with pytest.raises(StageError, match=r"trained with scikit-learn .*ibm_model_runtime"):
        PIPELINE.run(here, ["setup", "space", "store_model"])
    assert ibm.wml.models == {}
