"""seldon_kind's Jenkinsfile, run as Jenkins runs it, on the local backend: every stage its
own process, the approval an `input` step outside any agent (the KIND pod is released while a
person decides), with its own one-day timeout, that only a release manager can answer; the
approver reaches the merge."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from mlops_helpers.seldon_kind.catalog import DEPLOYMENTS
from mlops_helpers.seldon_kind.gitops import GitOpsRepo
from tests.jenkins_runner import BuildResult, make_origin, project_tree, run_jenkinsfile
from tests.support import leftover_processes

pytestmark = [pytest.mark.jenkins, pytest.mark.slow]

APPROVER = "release-manager"
RELEASE_MANAGERS = ("release-managers",)  # the input's submitter
DEVELOPER = "attendee"  # may build, may not approve production
SCRIPT = "scenarios/seldon_kind/Jenkinsfile"
RUN_DIR = "runs/seldon_kind-jk"
POD_STAGES = [
    "Unit tests",
    "Train",
    "Build images",
    "Serve locally",
    "Integration test",
    "Promote to staging",
    "Open production change",
]
STAGES = ["Test and stage", *POD_STAGES, "Approve production", "Merge production"]


def _images(manifests: dict[str, str]) -> dict[str, list[str]]:
    return {name: sorted(re.findall(r"image: *(\S+)", text)) for name, text in manifests.items()}


@dataclass
class Builds:
    refused: BuildResult  # build 1: a developer tries to approve; nobody else answers
    refused_production: dict[str, str]  # production/ on main right after build 1
    approved: BuildResult  # build 2, same job and workspace: approved


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """Two builds of one job, as in Jenkins: the first one's approval is refused, the next
    one's is given. The second reuses the workspace (and the run directory in it), so its
    unchanged models are not trained again."""
    root = tmp_path_factory.mktemp("seldon_jenkins")
    origin = make_origin(project_tree(), root / "origin.git")

    def run(number: int, approver: str, groups: tuple[str, ...]) -> BuildResult:
        return run_jenkinsfile(
            origin,
            root / "ws",
            script_path=SCRIPT,
            build_number=number,
            params={"BACKEND": "local", "ATTENDEE": "jk"},
            approver=approver,
            approver_groups=groups,
            timeout=1200,
        )

    refused = run(1, DEVELOPER, ())
    production = GitOpsRepo(refused.workspace / RUN_DIR / "gitops").read_environment("production")
    return Builds(refused, production, run(2, APPROVER, RELEASE_MANAGERS))


@pytest.fixture(scope="module")
def build(builds: Builds) -> BuildResult:
    return builds.approved


def test_every_stage_passes_in_order_and_cleanup_runs(build: BuildResult) -> None:
    assert build.result == "SUCCESS", build.log
    assert build.statuses() == dict.fromkeys(STAGES, "SUCCESS")
    # each pod cleans up after itself (its stage's post), the approval runs no sh at all
    assert [(s.stage, s.post) for s in build.sh_steps()] == [
        *((name, None) for name in POD_STAGES),
        ("Test and stage", "always"),
        ("Merge production", None),
        ("Merge production", "always"),
    ]
    assert build.stage("Test and stage").post_run == ["always"]
    assert build.stage("Merge production").post_run == ["always"]
    assert build.killed_processes == []  # cleanup stopped every model server itself
    assert leftover_processes(str(build.workspace)) == []


def test_the_approver_from_the_input_step_merged_production(build: BuildResult) -> None:
    run_dir = build.workspace / RUN_DIR
    state = json.loads((run_dir / "state.json").read_text())
    assert state["results"]["integration_test"]["passed"] is True
    approval = state["results"]["approve_production"]
    assert approval["approved"] is True and approval["approver"] == APPROVER
    gitops = GitOpsRepo(run_dir / "gitops")
    merge = gitops.log(limit=1)[0]
    assert merge.author == APPROVER and merge.sha == approval["merge_commit"]
    production = gitops.read_environment("production")
    assert len(production) == len(DEPLOYMENTS) + 1  # a manifest each, plus the namespace
    staging = gitops.read_environment("staging")
    assert set(production) == set(staging) and _images(production) == _images(staging)
    input_step = next(s for s in build.steps if s.step == "input")
    assert input_step.stage == "Approve production" and APPROVER in input_step.output


def test_the_approval_holds_no_agent_and_waits_up_to_a_day(build: BuildResult) -> None:
    """The privileged KIND pod is released while a person decides; the stage's one-day
    timeout is the one in force (no pipeline-wide two-hour timeout cuts it short)."""
    input_step = next(s for s in build.steps if s.step == "input")
    assert input_step.agent is None and build.stage("Approve production").agent is None
    assert input_step.timeout is not None and input_step.timeout > 23 * 3600
    assert build.stage("Test and stage").agent == "kubernetes:scenarios/seldon_kind/ci-pod.yaml"
    assert build.stage("Merge production").agent == build.stage("Test and stage").agent


def test_a_developer_cannot_approve_production(builds: Builds) -> None:
    """Anyone who can build may not approve: the input's submitter is release-managers. A
    developer's answer does not count; nobody else answers; the approval times out."""
    refused = builds.refused
    assert refused.result == "ABORTED", refused.log
    assert refused.status("Approve production") == "ABORTED"
    assert f"{DEVELOPER} may not approve" in refused.stage("Approve production").reason
    assert refused.status("Open production change") == "SUCCESS"
    assert refused.status("Merge production") == "SKIPPED"
    assert builds.refused_production == {}
    assert refused.stage("Test and stage").post_run == ["always"]
    assert refused.killed_processes == []


def test_the_next_build_replaces_the_refused_change(builds: Builds) -> None:
    opened = builds.approved.sh_steps("Open production change")[0].output
    assert "closed promote-production-" in opened and "this run's change replaces it" in opened
