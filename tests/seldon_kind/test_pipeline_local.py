"""The whole flow on the local backend: three serving styles, GitOps promotion with an
approval, rollback, idempotent and failure-safe reconcile, validation, cleanup.

The flow is the full run this file shares with ``tests/faults/test_seldon_kind.py`` and
others (``tests/fixtures/seldon_kind.py``); every test leaves every environment serving.
Two run after the others (``last_in_group``): killing the launcher orphans the servers it
forked, and cleanup ends the run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlops_helpers.errors import ConfigError, ServerStartError
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind import stages
from mlops_helpers.seldon_kind.catalog import DEPLOYMENTS
from mlops_helpers.seldon_kind.reconcile import ReconcileFailed
from mlops_helpers.seldon_kind.serving import (
    ImageIndex,
    LocalUnit,
    bad_payloads,
    predict,
    sample_payload,
    start_unit,
    warm_launcher,
)
from mlops_helpers.servers import ManagedServer, http_json
from mlops_helpers.waiting import wait_until
from tests.fixtures.seldon_kind import GROUP, RELEASE_TO_PRODUCTION, FullRun
from tests.support import leftover_processes

PIPELINE = stages.PIPELINE
pytestmark = pytest.mark.xdist_group(GROUP)


def env_record(ctx: StageContext, env: str) -> dict[str, Any]:
    return ctx.backend.environment(env).record()


def versions(ctx: StageContext, env: str) -> dict[str, str]:
    return {n: e["version"] for n, e in env_record(ctx, env)["deployments"].items()}


def test_every_serving_style_predicts_over_http(full_run: FullRun) -> None:
    ctx = full_run.ctx
    served = full_run.results["serve_local"]["predictions"]
    assert set(served) == {f"{d.name}-test" for d in DEPLOYMENTS}
    models = ctx.state.get("models")
    for env in ("staging", "production"):
        urls = ctx.backend.environment(env).urls()
        for dep in DEPLOYMENTS:
            status, body = predict(
                urls[f"{dep.name}-test"], sample_payload(models[dep.name]["meta"])
            )
            assert status == 200, body
            probabilities = body["data"]["ndarray"][0]
            assert len(probabilities) == len(models[dep.name]["meta"]["class_names"])
            assert abs(sum(probabilities) - 1) < 1e-6


def test_malformed_requests_get_4xx_and_the_servers_keep_serving(full_run: FullRun) -> None:
    ctx = full_run.ctx
    models = ctx.state.get("models")
    urls = ctx.backend.environment("staging").urls()
    for dep in DEPLOYMENTS:
        url, meta = urls[f"{dep.name}-test"], models[dep.name]["meta"]
        for label, payload in bad_payloads(meta).items():
            status, body = predict(url, payload)
            assert 400 <= status < 500, (dep.name, label, status, body)
            assert "status" in body, body  # Seldon's error message, not a crash page
        status, _ = http_json(
            "POST",
            f"{url}/api/v1.0/predictions",
            raw=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= status < 500
        assert predict(url, sample_payload(meta))[0] == 200


def test_integration_test_ran_seldon_client_against_each_server(full_run: FullRun) -> None:
    report = full_run.results["integration_test"]
    assert report["passed"]
    assert {r["name"] for r in report["results"]} == {f"{d.name}-test" for d in DEPLOYMENTS}
    assert all(r["success"] and r["prediction"] for r in report["results"])


def test_production_did_not_change_before_approval(full_run: FullRun) -> None:
    before = full_run.before_approval
    assert before["production_folder"] == {}
    assert before["production_servers"] == {}
    assert len(before["branch_folder"]) == len(DEPLOYMENTS) + 1  # + the namespace
    assert "tech-lead" not in before["description"] and "Integration test" in before["description"]
    approved = full_run.results["approve_production"]
    assert approved["approved"] and approved["approver"] == "tech-lead"
    after = full_run.after_approval
    assert after["production_versions"] == after["staging_versions"]
    merge = after["merge"]
    assert merge.author == "tech-lead" and merge.sha == approved["merge_commit"]
    assert after["production_commit"] == merge.sha


def test_reconcile_is_idempotent(full_run: FullRun) -> None:
    ctx = full_run.ctx
    pids = {n: e["server"]["pid"] for n, e in env_record(ctx, "staging")["deployments"].items()}
    report = stages.reconcile(ctx, "staging")
    assert report["started"] == [] and report["stopped"] == []
    assert len(report["kept"]) == len(DEPLOYMENTS)
    assert {
        n: e["server"]["pid"] for n, e in env_record(ctx, "staging")["deployments"].items()
    } == pids


@pytest.mark.usefixtures("production_in_step")
def test_promoting_the_same_release_again_changes_nothing(full_run: FullRun) -> None:
    ctx = full_run.ctx
    for stage in RELEASE_TO_PRODUCTION:  # this run's release in both, whatever ran before
        PIPELINE.run_stage(stage, ctx)
    head = full_run.repo.head()
    assert PIPELINE.run_stage("promote_staging", ctx)["commit"] is None
    assert PIPELINE.run_stage("open_production_change", ctx)["opened"] is False
    assert PIPELINE.run_stage("approve_production", ctx)["approved"] is False
    assert full_run.repo.head() == head


def test_a_bad_setting_is_refused_and_nothing_is_pushed(full_run: FullRun) -> None:
    """The setting is typed: 'two' replicas never reach a manifest (the manifests' own schema
    check is tests/seldon_kind/test_manifests.py)."""
    head = full_run.repo.head()
    bad = full_run.context(replicas="two")
    with pytest.raises(ConfigError, match=r"setting 'replicas' from parameter is 'two'"):
        PIPELINE.run_stage("promote_staging", bad)
    assert full_run.repo.head() == head


def test_a_manifest_that_cannot_start_leaves_the_previous_version_serving(
    full_run: FullRun,
) -> None:
    ctx, gitops = full_run.ctx, full_run.repo
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


@pytest.mark.usefixtures("production_in_step")
def test_a_new_model_reaches_staging_only_and_a_revert_rolls_it_back(full_run: FullRun) -> None:
    ctx = full_run.ctx
    first = versions(ctx, "staging")
    name = "news-classifier-test"
    retrained = full_run.context(news_c=0.25)  # a value no other test trains
    results = PIPELINE.run(
        retrained, ["train", "build", "serve_local", "integration_test", "promote_staging"]
    )
    # only the model whose inputs changed is trained again; the others are reused
    reused = {n: m["reused"] for n, m in results["train"]["models"].items()}
    assert reused == {d.name: d.name != "news-classifier" for d in DEPLOYMENTS}
    second = versions(ctx, "staging")
    assert second[name] != first[name]
    assert {k: v for k, v in second.items() if k != name} == {
        k: v for k, v in first.items() if k != name
    }
    assert versions(ctx, "production") == first  # production waits for its own approval
    result = stages.rollback(ctx, "staging")
    assert result["reconcile"]["started"] == [name]
    assert versions(ctx, "staging") == first
    url = ctx.backend.environment("staging").urls()[name]
    meta = ctx.state.get("models")["news-classifier"]["meta"]
    assert predict(url, sample_payload(meta))[0] == 200


def test_servers_are_forked_from_one_warm_launcher(full_run: FullRun) -> None:
    ctx = full_run.ctx
    launcher = ManagedServer.from_dict(ctx.state.get("seldon_launcher")["server"])
    assert launcher.alive()
    parent = psutil.Process(launcher.pid)
    assert parent.environ()["OPENBLAS_NUM_THREADS"] == "1"  # no BLAS threads at fork
    index = ImageIndex(ctx.run_dir / "images").load()["images"]
    for env in ("staging", "production"):
        for entry in env_record(ctx, env)["deployments"].values():
            server = psutil.Process(entry["server"]["pid"])
            assert server.ppid() == launcher.pid
            assert os.getsid(server.pid) == server.pid  # its own session: stopped alone
            assert server.cwd() == str(Path(index[entry["image"]]).resolve())


def test_the_launcher_answers_bad_requests_with_a_json_4xx(full_run: FullRun) -> None:
    url = full_run.ctx.state.get("seldon_launcher")["url"]
    good = {
        "args": ["Model"],
        "cwd": str(full_run.ctx.run_dir),
        "env": {},
        "port": 20000,
        "log": str(full_run.ctx.run_dir / "logs" / "never.log"),
    }
    bad = {
        "not JSON": b"{nope",
        "a field missing": {k: v for k, v in good.items() if k != "cwd"},
        "args not a list": {**good, "args": "Model"},
        "no model folder": {**good, "cwd": "/no/such/folder"},
        "env not strings": {**good, "env": {"A": 1}},
        "python without a script": {**good, "args": ["python", "/no/such/script.py"]},
        "a port below 1024": {**good, "port": 80},
        "no folder for the log": {**good, "log": "/no/such/folder/x.log"},
    }
    for label, body in bad.items():
        raw = body if isinstance(body, bytes) else None
        status, answer = http_json("POST", f"{url}/start", None if raw else body, raw=raw)
        assert status == 400 and "error" in answer, (label, status, answer)
    status, answer = http_json("GET", f"{url}/nothing")
    assert status == 404 and "error" in answer
    assert http_json("GET", f"{url}/health")[0] == 200  # and it keeps serving
    assert not (full_run.ctx.run_dir / "logs" / "never.log").exists()


def test_a_server_that_cannot_start_reports_its_log_and_leaves_nothing(
    full_run: FullRun, tmp_path: Path
) -> None:
    ctx = full_run.ctx
    launcher = warm_launcher(ctx, ctx.backend.python)
    unit = LocalUnit("broken", "broken:1", tmp_path, "NoSuchModel", [], "1")
    with pytest.raises(ServerStartError, match=r"(?s)did not become healthy.*NoSuchModel"):
        start_unit(launcher, unit, "seldon-broken", timeout=60)
    assert "process:seldon-broken" not in {r.id for r in ctx.tracker.list()}


@pytest.mark.last_in_group  # the servers the old launcher forked are orphans afterwards
def test_a_dead_launcher_is_started_again_by_the_next_reconcile(full_run: FullRun) -> None:
    """As when Jenkins runs each stage in a new process and something killed the launcher:
    the servers it forked keep serving, and the next server needs a new launcher."""
    ctx = full_run.ctx
    old = ManagedServer.from_dict(ctx.state.get("seldon_launcher")["server"])
    os.kill(old.pid, signal.SIGKILL)
    wait_until(
        lambda: not old.alive(),
        what="the killed launcher to end",
        timeout=10,
        interval=0.05,
        progress=False,
    )
    name = "news-classifier-test"
    entry = env_record(ctx, "staging")["deployments"][name]
    assert ManagedServer.from_dict(entry["server"]).alive()  # its servers outlive it
    ManagedServer.from_dict(entry["server"]).stop()
    report = stages.reconcile(ctx, "staging")
    assert report["started"] == [name]
    new = ManagedServer.from_dict(ctx.state.get("seldon_launcher")["server"])
    assert new.pid != old.pid and new.alive()
    meta = ctx.state.get("models")["news-classifier"]["meta"]
    url = ctx.backend.environment("staging").urls()[name]
    assert predict(url, sample_payload(meta))[0] == 200


@pytest.mark.last_in_group(1)  # after the launcher's killing too
def test_cleanup_stops_every_server(full_run: FullRun) -> None:
    ctx = full_run.ctx
    released = PIPELINE.run_stage("cleanup", ctx)["released"]
    assert len(released) >= 3 * len(DEPLOYMENTS)
    assert ctx.tracker.list() == []
    assert leftover_processes(str(full_run.root)) == []
    assert not list((ctx.run_dir / "environments").glob("*.json"))
    assert ctx.state.get("seldon_launcher") is None
