"""What the Jenkins-shaped runs of the scenario's Jenkinsfile share (local and aws files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_helpers.servers import http_json
from tests.jenkins_runner import BuildResult, Origin, run_jenkinsfile

JENKINSFILE = "scenarios/sagemaker_byo/Jenkinsfile"
BUILD_STAGES = [
    "BuildPushContainer",
    "TrainModel",
    "TrainStatus",
    "DeployToTest",
    "SmokeTest",
    "DeployToProd",
]
REGION = "eu-west-2"
ATTENDEE = "jt"
RUN_DIR = f"runs/sagemaker_byo-{ATTENDEE}"


def build(
    origin: Origin,
    workspace: Path,
    number: int,
    agent_env: dict[str, str] | None = None,
    **params: Any,
) -> BuildResult:
    return run_jenkinsfile(
        origin,
        workspace,
        script_path=JENKINSFILE,
        build_number=number,
        params={"ATTENDEE": ATTENDEE, **params},
        agent_env=agent_env,
        timeout=600,
    )


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
    # the stage's own process exits non-zero with one readable line naming the gate
    assert "gate failed: smoke test" in result.log and "below the threshold" in result.log
    assert result.post_run == ["always"]
