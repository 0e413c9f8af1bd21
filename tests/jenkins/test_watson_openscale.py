"""watson_openscale's two Jenkinsfiles, run as Jenkins runs them, on the local backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jenkins_groovy import Call, Str, walk
from tests.jenkins_shaped import (
    BuildResult,
    JenkinsfileError,
    Origin,
    PipelineDef,
    load_jenkinsfile,
    make_origin,
    project_tree,
    run_jenkinsfile,
)
from tests.support import leftover_processes

pytestmark = [pytest.mark.jenkins, pytest.mark.slow]

API_KEY = "ibm-api-key-for-jenkins-7f3a"  # never used by the local backend; must never show
CREDENTIALS = {"ibm-cloud-api-key": API_KEY, "ibm-cloud-url": "https://127.0.0.1:9/"}


def _files_with_secret(tree: Path) -> list[str]:
    return [str(p) for p in tree.rglob("*") if p.is_file() and API_KEY.encode() in p.read_bytes()]


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    """One repository for both Jenkinsfiles' builds (each checks out its own workspace)."""
    return make_origin(project_tree(), tmp_path_factory.mktemp("watson_origin") / "origin.git")


@pytest.fixture(scope="module")
def sdk_build(
    tmp_path_factory: pytest.TempPathFactory,
    origin: Origin,
) -> Iterator[BuildResult]:
    root = tmp_path_factory.mktemp("watson_jenkins")
    yield run_jenkinsfile(
        origin,
        root / "ws",
        script_path="scenarios/watson_openscale/Jenkinsfile",
        params={"BACKEND": "local", "ATTENDEE": "jk"},
        credentials=CREDENTIALS,
        timeout=900,
    )


def test_every_stage_passes_and_cleanup_runs_always(sdk_build: BuildResult) -> None:
    assert sdk_build.result == "SUCCESS", sdk_build.log
    assert set(sdk_build.statuses().values()) == {"SUCCESS"}
    assert sdk_build.post_run == ["always"]
    assert sdk_build.killed_processes == []  # cleanup stopped the scoring server itself
    assert leftover_processes(str(sdk_build.workspace)) == []


def test_the_model_tests_ran_in_the_checked_out_scenario_folder(sdk_build: BuildResult) -> None:
    """The model project's own tests (its pyproject's settings, run in its folder) pass."""
    (step,) = sdk_build.sh_steps("Model tests")
    assert step.cwd == str(sdk_build.workspace / "scenarios/watson_openscale")
    assert step.exit_code == 0 and "3 passed" in step.output, step.output


def test_the_quality_gate_measured_the_deployed_model(sdk_build: BuildResult) -> None:
    run_dir = sdk_build.workspace / "runs/watson_openscale-jk"
    results = json.loads((run_dir / "state.json").read_text())["results"]
    assert results["store_model"]["name"] == "digits-classifier-jk"
    assert results["deploy"]["model_version"] == results["store_model"]["version"]
    assert results["feedback"]["stored"] == 200
    evaluate = results["evaluate"]
    accuracy = next(m for m in evaluate["metrics"] if m["metric"] == "accuracy")
    assert evaluate["status"] == "finished" and evaluate["n_rows"] == 200
    assert accuracy["threshold"] == 0.8 and accuracy["value"] >= 0.8 and accuracy["passed"]
    released = results["cleanup"]["released"]
    assert "process:wos-deploy-jk" in released and "wos_subscription:wos-deploy-jk" in released
    assert sdk_build.archived == ["runs/watson_openscale-jk/state.json"]


def test_the_api_key_is_bound_only_where_declared_and_never_written(sdk_build: BuildResult) -> None:
    assert API_KEY not in sdk_build.log
    assert _files_with_secret(sdk_build.workspace / "runs") == []  # what the stages wrote
    assert "IBM_API_KEY" not in sdk_build.env  # never a build-wide variable


CPDCTL = project_tree() / "scenarios/watson_openscale/Jenkinsfile.cpdctl"


def test_the_cpdctl_variant_compiles_as_declarative_pipeline() -> None:
    """Jenkins' declarative validator refuses Groovy statements outside ``script``, also
    inside a step's own block (jenkinsci/ant-plugin#53: "Expected a step"). The polling
    bodies (``waitUntil { String state = sh(...); if ...; return ... }``) need a
    ``script { }`` around them, or the whole build fails before its first stage."""
    try:
        load_jenkinsfile(CPDCTL)
    except JenkinsfileError as exc:
        pytest.fail(f"Jenkinsfile.cpdctl would not compile on Jenkins: {exc}")


def _cpdctl_pipeline() -> PipelineDef:
    try:
        return load_jenkinsfile(CPDCTL)
    except JenkinsfileError as exc:  # the test above fails for it, with the reason
        pytest.skip(f"Jenkinsfile.cpdctl does not compile, so Jenkins would run nothing: {exc}")


@pytest.fixture(scope="module")
def cpdctl_build(
    tmp_path_factory: pytest.TempPathFactory,
    origin: Origin,
) -> Iterator[BuildResult]:
    _cpdctl_pipeline()
    root = tmp_path_factory.mktemp("watson_cpdctl")
    yield run_jenkinsfile(
        origin,
        root / "ws",
        script_path="scenarios/watson_openscale/Jenkinsfile.cpdctl",
        params={"ATTENDEE": "jk"},
        credentials=CREDENTIALS,
        timeout=600,
    )


def _sh_scripts(node: object) -> list[str]:
    """Every sh script (its literal text) below ``node``."""
    scripts = []
    for found in walk(node):
        if isinstance(found, Call) and found.name == "sh":
            for arg in [*found.args, *found.named.values()]:
                if isinstance(arg, Str):
                    scripts.append("".join(p for p in arg.parts if isinstance(p, str)))
    return scripts


def test_cpdctl_variant_runs_setup_then_stops_where_cpdctl_is_needed(
    cpdctl_build: BuildResult,
) -> None:
    """What runs here: Setup's `mlops-workshop watson_openscale setup` (it writes what every
    later cpdctl call reads) and the post block. What cannot: the first cpdctl call and every
    later stage, because the cpdctl binary (IBM's Go CLI, downloaded from GitHub releases) is
    not installable here; the build fails there with exit code 127, as it would on an agent
    without cpdctl, and the later stages are skipped."""
    build = cpdctl_build
    setup, cpdctl_login = build.sh_steps("Setup")
    assert setup.exit_code == 0, setup.output
    run_dir = Path(build.env["RUN_DIR"])
    assert run_dir == build.workspace / "runs/watson_openscale-jk"
    for made in (
        "model.tar.gz",
        "data/scoring_payload.json",
        "data/feedback.json",
        "data/asset_properties.json",
    ):
        assert (run_dir / made).is_file(), made
    assert cpdctl_login.exit_code == 127 and "cpdctl: command not found" in cpdctl_login.output
    assert "--apikey ****" in cpdctl_login.output and API_KEY not in build.log
    later = [s for s in build.stages if s.name != "Setup"]
    assert later and all(s.status == "SKIPPED" for s in later)
    assert build.post_run == ["always"] and not (build.workspace / ".cpdctl").exists()
    assert build.killed_processes == []


def test_every_step_the_cpdctl_run_skips_needs_cpdctl() -> None:
    """So the skip above hides nothing else: each sh step after Setup's first calls cpdctl."""
    pipeline = _cpdctl_pipeline()
    skipped = [s for s in pipeline.stages if s.name != "Setup"]
    scripts = [script for stage in skipped for script in _sh_scripts(stage.steps)]
    assert len(scripts) >= 15
    assert all("cpdctl " in script for script in scripts), scripts
