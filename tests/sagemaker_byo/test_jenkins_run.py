"""The scenario's Jenkinsfile executed the way Jenkins runs it (``tests/jenkins_shaped.py``):
a git workspace, one process per ``sh`` step, ``post``, Jenkins' ProcessTreeKiller at the
end of each build. Builds of one job share the workspace, so production (the run root in
it) carries over from build to build, as on a Jenkins agent.

Three builds: two that pass (MAX_DEPTH 4, then 2: another model) and one that fails its
smoke test (MAX_DEPTH 1, a stump), then a TEARDOWN build. On the local backend and on the
aws backend against moto's server on loopback (completed by ``fake_sagemaker``: jobs run
the container's ``train``, endpoints answer with their model, UpdateEndpoint).

On aws the image is already in ECR (the test puts its manifest there): building and pushing
it needs a Docker engine, which the aws backend tests cover with a recorder instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_helpers.sagemaker_byo import container
from mlops_helpers.servers import free_port, http_json
from tests.jenkins_shaped import BuildResult, Origin, make_origin, project_tree, run_jenkinsfile
from tests.sagemaker_byo.fake_sagemaker import completed_sagemaker
from tests.support import leftover_processes

pytestmark = [pytest.mark.jenkins, pytest.mark.slow]

JENKINSFILE = "scenarios/sagemaker_byo/Jenkinsfile"
BUILD_STAGES = ["BuildPushContainer", "TrainModel", "TrainStatus", "DeployToTest", "SmokeTest",
                "DeployToProd"]
REGION = "eu-west-2"
ATTENDEE = "jt"
RUN_DIR = f"runs/sagemaker_byo-{ATTENDEE}"


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    return make_origin(project_tree(), tmp_path_factory.mktemp("repo") / "origin.git",
                       pr_branch=None)


def build(origin: Origin, workspace: Path, number: int, agent_env: dict[str, str] | None = None,
          **params: Any) -> BuildResult:
    return run_jenkinsfile(origin, workspace, script_path=JENKINSFILE, build_number=number,
                           params={"ATTENDEE": ATTENDEE, **params}, agent_env=agent_env,
                           timeout=600)


def state(workspace: Path, *parts: str) -> dict[str, Any]:
    path = workspace.joinpath(RUN_DIR, *parts)
    return json.loads(path.read_text()) if path.is_file() else {}


def answers(url: str) -> bool:
    try:
        return http_json("GET", f"{url}/ping", timeout=2)[0] == 200
    except OSError:
        return False


def assert_passed(result: BuildResult) -> None:
    assert result.result == "SUCCESS", result.log[-4000:]
    assert [result.status(s) for s in BUILD_STAGES] == ["SUCCESS"] * len(BUILD_STAGES)
    assert result.status("TeardownProduction") == "SKIPPED"
    assert result.post_run == ["always"]
    assert result.killed_processes == [], "production must not be a build's leftover"


def assert_failed_smoke_test(result: BuildResult) -> None:
    assert result.result == "FAILURE"
    assert result.status("SmokeTest") == "FAILURE" and result.status("DeployToProd") != "SUCCESS"
    assert "below the threshold" in result.log
    assert result.post_run == ["always"]


def test_local_backend_keeps_production_across_builds(origin: Origin, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    local = {"BACKEND": "local"}
    try:
        first = build(origin, workspace, 1, **local, MAX_DEPTH="4")
        assert_passed(first)
        image = state(workspace, "state.json")["image"]
        assert image["source"] == str(workspace / "scenarios/sagemaker_byo/container")
        one = state(workspace, "production", "state.json")["endpoint"]

        second = build(origin, workspace, 2, **local, MAX_DEPTH="2")
        assert_passed(second)
        two = state(workspace, "production", "state.json")["endpoint"]
        assert two["endpoint_name"] == one["endpoint_name"]
        assert two["model_digest"] != one["model_digest"]
        assert not answers(one["url"]), "the first model's server was replaced"

        third = build(origin, workspace, 3, **local, MAX_DEPTH="1")
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


@pytest.fixture
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with completed_sagemaker():
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


def test_aws_backend_against_moto_keeps_one_production_endpoint(
    origin: Origin, tmp_path: Path, moto_server: str
) -> None:
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    agent = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_ENDPOINT_URL": moto_server, "AWS_EC2_METADATA_DISABLED": "true",
             "MLOPS_POLL_INTERVAL": "0.1"}
    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=moto_server, **keys)
    sm = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_server, **keys)
    runtime = boto3.client("sagemaker-runtime", region_name=REGION, endpoint_url=moto_server,
                           **keys)
    repository = f"byo-scikit-{ATTENDEE}"
    ecr.create_repository(repositoryName=repository)
    ecr.put_image(repositoryName=repository, imageTag=container.digest(
        container.container_dir())[:12], imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}))
    aws = {"BACKEND": "aws", "AWS_REGION": REGION,
           "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/byo-sagemaker"}
    workspace = tmp_path / "workspace"

    assert_passed(build(origin, workspace, 1, agent, **aws, MAX_DEPTH="4"))
    assert_passed(build(origin, workspace, 2, agent, **aws, MAX_DEPTH="2"))
    second = state(workspace, "state.json")
    job, digest = second["training_job"], second["model_digest"]
    assert_failed_smoke_test(build(origin, workspace, 3, agent, **aws, MAX_DEPTH="1"))

    # exactly one production endpoint, and it serves the second build's model
    endpoints = sm.list_endpoints()["Endpoints"]
    assert [e["EndpointName"] for e in endpoints] == [f"byo-prod-{ATTENDEE}"]
    prod = sm.describe_endpoint(EndpointName=f"byo-prod-{ATTENDEE}")
    assert prod["EndpointConfigName"] == f"{job}-prod"
    model = sm.describe_model(ModelName=job)["PrimaryContainer"]["ModelDataUrl"]
    assert model == second["model_uri"] and f"/{job}/output/model.tar.gz" in model
    answer = runtime.invoke_endpoint(EndpointName=f"byo-prod-{ATTENDEE}", ContentType="text/csv",
                                     Body=b"5.1,3.5,1.4,0.2\n")
    assert answer["CustomAttributes"] == f"model_digest={digest}"
    # nothing of the other builds is left: one configuration, one model
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [
        f"{job}-prod"]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [job]

    gone = build(origin, workspace, 4, agent, **aws, TEARDOWN=True)
    assert gone.result == "SUCCESS", gone.log[-3000:]
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
