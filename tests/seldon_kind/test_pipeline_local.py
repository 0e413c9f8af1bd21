"""The whole flow on the local backend: three serving styles, GitOps promotion with an
approval, rollback, idempotent and failure-safe reconcile, validation, cleanup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.errors import GateFailed
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind import stages
from mlops_helpers.seldon_kind.catalog import DEPLOYMENTS
from mlops_helpers.seldon_kind.gitops import GitOpsRepo
from mlops_helpers.seldon_kind.reconcile import ReconcileFailed
from mlops_helpers.seldon_kind.serving import bad_payloads, predict, sample_payload
from mlops_helpers.servers import ManagedServer, http_json
from tests.seldon_kind.conftest import make_context
from tests.support import leftover_processes

PIPELINE = stages.PIPELINE
BEFORE_APPROVAL = ["unit_tests", "train", "build", "serve_local", "integration_test",
                   "promote_staging", "open_production_change"]


def env_record(ctx: StageContext, env: str) -> dict[str, Any]:
    return ctx.backend.environment(env).record()


def versions(ctx: StageContext, env: str) -> dict[str, str]:
    return {n: e["version"] for n, e in env_record(ctx, env)["deployments"].items()}


@pytest.fixture(scope="module")
def flow(module_root: Path) -> Iterator[dict[str, Any]]:
    ctx = make_context(module_root)
    try:
        results = PIPELINE.run(ctx, BEFORE_APPROVAL)
        gitops = GitOpsRepo(ctx.run_dir / "gitops")
        change = ctx.state.get("change")
        before = {
            "production_folder": gitops.read_environment("production"),
            "production_servers": env_record(ctx, "production")["deployments"],
            "branch_folder": gitops.read_environment("production", change["branch"]),
            "description": gitops.show_file(change["description"], change["branch"]),
        }
        results["approve_production"] = PIPELINE.run_stage("approve_production", ctx)
        yield {"ctx": ctx, "results": results, "before": before, "repo": gitops}
    finally:
        PIPELINE.run_stage("cleanup", ctx)


def test_every_serving_style_predicts_over_http(flow: dict[str, Any]) -> None:
    ctx = flow["ctx"]
    served = flow["results"]["serve_local"]["predictions"]
    assert set(served) == {f"{d.name}-test" for d in DEPLOYMENTS}
    models = ctx.state.get("models")
    for env in ("staging", "production"):
        urls = ctx.backend.environment(env).urls()
        for dep in DEPLOYMENTS:
            status, body = predict(urls[f"{dep.name}-test"], sample_payload(
                models[dep.name]["meta"]))
            assert status == 200, body
            probabilities = body["data"]["ndarray"][0]
            assert len(probabilities) == len(models[dep.name]["meta"]["class_names"])
            assert abs(sum(probabilities) - 1) < 1e-6


def test_malformed_requests_get_4xx_and_the_servers_keep_serving(
        flow: dict[str, Any]) -> None:
    ctx = flow["ctx"]
    models = ctx.state.get("models")
    urls = ctx.backend.environment("staging").urls()
    for dep in DEPLOYMENTS:
        url, meta = urls[f"{dep.name}-test"], models[dep.name]["meta"]
        for label, payload in bad_payloads(meta).items():
            status, body = predict(url, payload)
            assert 400 <= status < 500, (dep.name, label, status, body)
            assert "status" in body, body  # Seldon's error message, not a crash page
        status, _ = http_json("POST", f"{url}/api/v1.0/predictions", raw=b"{not json",
                              headers={"Content-Type": "application/json"})
        assert 400 <= status < 500
        assert predict(url, sample_payload(meta))[0] == 200


def test_integration_test_ran_seldon_client_against_each_server(flow: dict[str, Any]) -> None:
    report = flow["results"]["integration_test"]
    assert report["passed"]
    assert {r["name"] for r in report["results"]} == {f"{d.name}-test" for d in DEPLOYMENTS}
    assert all(r["success"] and r["prediction"] for r in report["results"])


def test_production_did_not_change_before_approval(flow: dict[str, Any]) -> None:
    before = flow["before"]
    assert before["production_folder"] == {}
    assert before["production_servers"] == {}
    assert len(before["branch_folder"]) == len(DEPLOYMENTS) + 1  # + the namespace
    assert "tech-lead" not in before["description"] and "Integration test" in before[
        "description"]
    approved = flow["results"]["approve_production"]
    assert approved["approved"] and approved["approver"] == "tech-lead"
    ctx = flow["ctx"]
    assert versions(ctx, "production") == versions(ctx, "staging")
    merge = flow["repo"].log(limit=1)[0]
    assert merge.author == "tech-lead" and merge.sha == approved["merge_commit"]
    assert env_record(ctx, "production")["commit"] == merge.sha


def test_reconcile_is_idempotent(flow: dict[str, Any]) -> None:
    ctx = flow["ctx"]
    pids = {n: e["server"]["pid"] for n, e in env_record(ctx, "staging")["deployments"].items()}
    report = stages.reconcile(ctx, "staging")
    assert report["started"] == [] and report["stopped"] == []
    assert len(report["kept"]) == len(DEPLOYMENTS)
    assert {n: e["server"]["pid"]
            for n, e in env_record(ctx, "staging")["deployments"].items()} == pids


def test_promoting_the_same_release_again_changes_nothing(flow: dict[str, Any]) -> None:
    ctx = flow["ctx"]
    head = flow["repo"].head()
    assert PIPELINE.run_stage("promote_staging", ctx)["commit"] is None
    assert PIPELINE.run_stage("open_production_change", ctx)["opened"] is False
    assert PIPELINE.run_stage("approve_production", ctx)["approved"] is False
    assert flow["repo"].head() == head


def test_invalid_manifest_is_refused_and_nothing_is_pushed(
        flow: dict[str, Any], module_root: Path) -> None:
    head = flow["repo"].head()
    bad = make_context(module_root, replicas="two")
    with pytest.raises(GateFailed,
                       match=r"(?s)invalid manifest.*nothing was pushed.*replicas. .two. is not"):
        PIPELINE.run_stage("promote_staging", bad)
    assert flow["repo"].head() == head


def test_a_manifest_that_cannot_start_leaves_the_previous_version_serving(
        flow: dict[str, Any]) -> None:
    ctx, gitops = flow["ctx"], flow["repo"]
    name = "news-classifier-test"
    old = env_record(ctx, "staging")
    gitops.sync_main()
    manifest = gitops.work / "staging" / "news-classifier.yaml"
    text = manifest.read_text()
    image = old["deployments"][name]["image"]
    manifest.write_text(text.replace(image, image.rsplit(":", 1)[0] + ":doesnotexist"))
    assert gitops.commit_and_push("staging: a broken image")
    with pytest.raises(ReconcileFailed, match="previous version keeps serving"):
        stages.reconcile(ctx, "staging")
    now = env_record(ctx, "staging")
    assert now["commit"] == old["commit"] and now["failed"]["deployments"]
    server = ManagedServer.from_dict(now["deployments"][name]["server"])
    assert server.pid == old["deployments"][name]["server"]["pid"] and server.alive()
    meta = ctx.state.get("models")["news-classifier"]["meta"]
    assert predict(server.url, sample_payload(meta))[0] == 200
    # a revert of the broken commit brings staging back in sync, without restarts
    report = stages.rollback(ctx, "staging")["reconcile"]
    assert report["started"] == [] and env_record(ctx, "staging")["failed"] is None


def test_a_new_model_reaches_staging_only_and_a_revert_rolls_it_back(
        flow: dict[str, Any], module_root: Path) -> None:
    ctx = flow["ctx"]
    first = versions(ctx, "staging")
    name = "news-classifier-test"
    retrained = make_context(module_root, news_c=0.5)
    PIPELINE.run(retrained, ["train", "build", "serve_local", "integration_test",
                             "promote_staging"])
    second = versions(ctx, "staging")
    assert second[name] != first[name]
    assert {k: v for k, v in second.items() if k != name} == {
        k: v for k, v in first.items() if k != name}
    assert versions(ctx, "production") == first  # production waits for its own approval
    result = stages.rollback(ctx, "staging")
    assert result["reconcile"]["started"] == [name]
    assert versions(ctx, "staging") == first
    url = ctx.backend.environment("staging").urls()[name]
    meta = ctx.state.get("models")["news-classifier"]["meta"]
    assert predict(url, sample_payload(meta))[0] == 200


def test_cleanup_stops_every_server(flow: dict[str, Any], module_root: Path) -> None:
    ctx = flow["ctx"]
    released = PIPELINE.run_stage("cleanup", ctx)["released"]
    assert len(released) >= 3 * len(DEPLOYMENTS)
    assert ctx.tracker.list() == []
    assert leftover_processes(str(module_root)) == []
    assert not list((ctx.run_dir / "environments").glob("*.json"))
