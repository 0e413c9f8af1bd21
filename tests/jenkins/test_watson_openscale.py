"""watson_openscale's two Jenkinsfiles, run as Jenkins runs them, on the local backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jenkins_runner import (
    BuildResult,
    Call,
    JenkinsfileError,
    Origin,
    PipelineDef,
    Str,
    load_jenkinsfile,
    make_origin,
    posix_sh,
    project_tree,
    run_jenkinsfile,
    walk,
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
        credentials={},  # a fresh Jenkins: the local backend needs no IBM key
        timeout=900,
    )


def test_the_local_backend_needs_no_ibm_key_and_cleanup_runs(sdk_build: BuildResult) -> None:
    """A fresh Jenkins has no 'ibm-cloud-api-key': every stage and the post-block cleanup
    still run on the local backend (which stops its scoring server there)."""
    assert "Could not find credentials" not in sdk_build.log
    assert sdk_build.result == "SUCCESS", sdk_build.log[-3000:]
    (cleanup,) = [s for s in sdk_build.sh_steps() if s.post == "always"]
    assert cleanup.exit_code == 0 and "watson_openscale cleanup" in cleanup.command
    assert sdk_build.killed_processes == []


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
    assert cpdctl_login.exit_code == 127 and "cpdctl: not found" in cpdctl_login.output  # dash
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


FAILING_CPDCTL = "#!/bin/sh\necho 'cpdctl: 401 Unauthorized: the API key was refused' >&2\nexit 1\n"


def _run_as_jenkins(
    script: str, env: dict[str, str], folder: Path
) -> subprocess.CompletedProcess[str]:
    """One sh step as Jenkins runs it on a Debian agent: its own file, `sh -xe` (dash)."""
    path = folder / f"script-{abs(hash(script))}.sh"
    path.write_text(script)
    return subprocess.run(
        [posix_sh(), "-xe", str(path)],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_cpdctl_step_fails_where_cpdctl_fails(tmp_path: Path) -> None:
    """Jenkins runs each script with `sh -xe`, and on a Debian agent sh is dash: no
    pipefail. A script that pipes cpdctl's output (`cpdctl ... | tr -d '"'`) exits 0 with an
    empty id when cpdctl fails, and the build goes on to a later stage or a wait that times
    out. With a cpdctl that always fails, every script that calls it must fail itself."""
    import sklearn

    (tmp_path / "bin").mkdir()
    cpdctl = tmp_path / "bin" / "cpdctl"
    cpdctl.write_text(FAILING_CPDCTL)
    cpdctl.chmod(0o755)
    sklearn_minor = ".".join(sklearn.__version__.split(".")[:2])
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{Path(sys.executable).parent}"
        f"{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MODEL_TYPE": f"scikit-learn_{sklearn_minor}",  # the version check passes
        "RUN_DIR": str(tmp_path),
        "WORKSPACE": str(tmp_path),
        **{
            name: f"{name.lower()}-1"
            for name in [
                "SPACE_NAME",
                "SPACE_ID",
                "MODEL_NAME",
                "MODEL_ID",
                "DEPLOY_NAME",
                "DEPLOY_ID",
                "DATA_MART_ID",
                "SERVICE_PROVIDER_ID",
                "SUBSCRIPTION_ID",
                "MONITOR_INSTANCE_ID",
                "PAYLOAD_DATA_SET_ID",
                "FEEDBACK_DATA_SET_ID",
                "MONITOR_RUN_ID",
                "SOFTWARE_SPEC",
                "IBM_API_KEY",
                "IBM_CLOUD_URL",
            ]
        },
        "MIN_FEEDBACK_DATA_SIZE": "50",
        "MAX_ROWS_PER_EVALUATION": "1000",
        "MIN_ACCURACY": "0.8",
    }
    pipeline = _cpdctl_pipeline()
    scripts = [s for stage in pipeline.stages for s in _sh_scripts(stage.steps) if "cpdctl " in s]
    assert len(scripts) >= 25
    passed_anyway = [
        script for script in scripts if _run_as_jenkins(script, env, tmp_path).returncode == 0
    ]
    assert passed_anyway == [], f"{len(passed_anyway)} of {len(scripts)} scripts exit 0"
