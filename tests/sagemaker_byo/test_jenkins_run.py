"""The scenario's Jenkinsfile executed the way Jenkins runs it (``tests/jenkins_runner``):
a git workspace, one process per ``sh`` step, ``post``, Jenkins' ProcessTreeKiller at the
end of each build. Builds of one job share the workspace, so production (the run root in
it) carries over from build to build, as on a Jenkins agent.

Three builds: two that pass (MAX_DEPTH 4, then 2: another model) and one that fails its
smoke test (MAX_DEPTH 1, a stump), then a TEARDOWN build. On the local backend here, and
on the aws backend against moto's server on loopback in ``test_jenkins_run_aws.py``
(completed by the SageMaker double, ``tests/doubles/sagemaker.py``: jobs run the
container's ``train``, endpoints answer with their model, UpdateEndpoint).

On aws the image is already in ECR (the test puts its manifest there): building and pushing
it needs a Docker engine, which the aws backend tests cover with a recorder instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_helpers.servers import http_json
from tests.jenkins_runner import Origin
from tests.sagemaker_byo.jenkins_builds import (
    RUN_DIR,
    answers,
    assert_failed_smoke_test,
    assert_passed,
    build,
    state,
)
from tests.support import leftover_processes

pytestmark = [pytest.mark.jenkins, pytest.mark.slow]


def test_local_backend_keeps_production_across_builds(origin: Origin, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    local = {"BACKEND": "local"}
    try:
        first = build(origin, workspace, 1, **local, MAX_DEPTH="4")
        assert_passed(first)
        image = state(workspace, "state.json")["image"]
        assert image["source"] == str(workspace / "scenarios/sagemaker_byo/container")
        one = state(workspace, "production", "state.json")["endpoint"]

        # one worker per endpoint from here: the first build showed that a server with
        # several workers outlives its build; a worker less is a model load less per server
        one_worker = {"MLOPS_SERVE_WORKERS": "1"}
        second = build(origin, workspace, 2, one_worker, **local, MAX_DEPTH="2")
        assert_passed(second)
        two = state(workspace, "production", "state.json")["endpoint"]
        assert two["endpoint_name"] == one["endpoint_name"]
        assert two["model_digest"] != one["model_digest"]
        assert not answers(one["url"]), "the first model's server was replaced"

        third = build(origin, workspace, 3, one_worker, **local, MAX_DEPTH="1")
        assert_failed_smoke_test(third)
        assert third.killed_processes == []

        # exactly one production server, and it serves the second build's model
        assert state(workspace, "production", "state.json")["endpoint"] == two
        status, ping = http_json("GET", f"{two['url']}/ping")
        assert (status, ping["model_digest"]) == (200, two["model_digest"])
        servers = [p for p in leftover_processes(str(workspace)) if "program/serve" in p]
        assert len(servers) == 1 and f"--port {two['server']['port']}" in servers[0], servers
        production = json.loads((workspace / RUN_DIR / "production/resources.json").read_text())
        assert sorted(r["kind"] for r in production) == ["path", "process"]
        assert json.loads((workspace / RUN_DIR / "resources.json").read_text()) == []
    finally:
        gone = build(origin, workspace, 4, **local, TEARDOWN=True)
    assert gone.result == "SUCCESS", gone.log[-3000:]
    assert gone.status("TeardownProduction") == "SUCCESS"
    assert gone.status("BuildPushContainer") == "SKIPPED"
    assert leftover_processes(str(workspace)) == []
    assert state(workspace, "production", "state.json") == {}
