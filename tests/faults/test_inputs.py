"""Issue 15, strict inputs: an unknown ``-p`` name is an error listing the known ones, typed
and ranged settings refuse bad values from any source, and every CLI failure is one readable
line (a traceback only with ``--debug``). Each stage runs in its own process, as Jenkins
runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.errors import ConfigError, UnknownNameError
from mlops_helpers.scenarios import load_pipeline

pytestmark = pytest.mark.faults

CLI = Path(sys.executable).parent / "mlops-workshop"
SECRET = "sk-input-fault-secret-4242"


def cli(run_root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    environ.update(MLOPS_RUN_ROOT=str(run_root), MLOPS_ATTENDEE="test", **env)
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=environ, timeout=120
    )


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one readable line, no traceback
    return lines[0]


def test_an_unknown_parameter_name_is_refused_before_any_work(run_root: Path) -> None:
    done = cli(run_root, "watson_openscale", "evaluate", "-p", "min_acuracy", "0.995")
    line = _error_line(done)
    assert done.returncode == 2
    assert line.startswith("error: unknown watson_openscale setting 'min_acuracy'; known: ")
    assert "min_accuracy" in line.split("known: ")[1].split(", ")
    assert not run_root.exists() or not any(run_root.rglob("state.json"))  # nothing ran


@pytest.mark.parametrize(
    "scenario, stage, key, value, expected",
    [
        ("watson_openscale", "evaluate", "min_accuracy", "1.5", "must be a number in [0, 1]"),
        ("watson_openscale", "evaluate", "min_accuracy", "-5", "must be a number in [0, 1]"),
        ("watson_openscale", "evaluate", "min_accuracy", "nan", "must be a number in [0, 1]"),
        ("watson_openscale", "feedback", "feedback_rows", "0", "must be a whole number >= 1"),
        ("continuous_x", "evaluate", "min_accuracy", "abc", "must be a number in [0, 1]"),
        ("sagemaker_byo", "train", "max_depth", "2.5", "must be a whole number"),
        ("sagemaker_byo", "train", "criterion", "best", "must be one of gini, entropy, log_loss"),
        ("seldon_kind", "train", "news_c", "0", "must be a number > 0"),
        (
            "dvc_cml",
            "reproduce",
            "dvc_timeout",
            "-1",
            "must be a number > 0 (how long any one git or dvc command may take, in seconds)",
        ),
    ],
)
def test_a_value_out_of_its_type_or_range_is_one_clear_line(
    run_root: Path, scenario: str, stage: str, key: str, value: str, expected: str
) -> None:
    done = cli(run_root, scenario, stage, "-p", key, value)
    line = _error_line(done)
    assert done.returncode == 1
    assert line.startswith(f"error: setting '{key}' from parameter is ") and expected in line


def test_a_bad_value_from_the_environment_is_refused_too(run_root: Path) -> None:
    """As Jenkins passes its parameters: MLOPS_MIN_ACCURACY from the job's environment."""
    done = cli(run_root, "watson_openscale", "evaluate", MLOPS_MIN_ACCURACY="1.5")
    assert _error_line(done) == (
        "error: setting 'min_accuracy' from environment variable MLOPS_MIN_ACCURACY is '1.5', "
        "but it must be a number in [0, 1] (the quality gate's lower limit on accuracy)"
    )


def test_validate_params_is_the_one_check_for_stages_and_notebooks() -> None:
    pipeline = load_pipeline("watson_openscale")
    assert pipeline.validate_params({"min_accuracy": "0.9", "feedback_rows": 100}) == {
        "min_accuracy": 0.9,
        "feedback_rows": 100,
    }
    with pytest.raises(UnknownNameError, match="unknown watson_openscale setting 'min_acc'"):
        pipeline.validate_params({"min_acc": 0.9})
    with pytest.raises(ConfigError, match=r"'min_accuracy' from parameter is 1\.5"):
        pipeline.validate_params({"min_accuracy": 1.5})


@pytest.mark.parametrize(
    "args, expected",
    [
        (["nosuch"], "error: argument COMMAND: invalid choice: 'nosuch'"),
        (["seldon_kind"], "error: the following arguments are required: stage"),
        (
            ["seldon_kind", "no_such_stage"],
            "error: unknown seldon_kind stage 'no_such_stage'; known: ",
        ),
    ],
)
def test_usage_errors_are_one_line_too(run_root: Path, args: list[str], expected: str) -> None:
    done = cli(run_root, *args)
    assert done.returncode == 2 and _error_line(done).startswith(expected)


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(run_root: Path) -> None:
    """A hand-edited state file whose value has the wrong shape is not our exception type:
    still one line, naming it, with the way to the traceback. (A torn one is named as a
    corrupt file: tests/faults/test_run_folder.py.)"""
    run_dir = run_root / "continuous_x-test"
    run_dir.mkdir(parents=True)
    (run_dir / "state.json").write_text('{"history": 5}')
    done = cli(run_root, "continuous_x", "revert")
    line = _error_line(done)
    assert done.returncode == 1
    assert line.startswith("error: AttributeError: ")
    assert line.endswith("(run again with --debug for the traceback)")
    debug = cli(run_root, "continuous_x", "revert", "--debug")
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: AttributeError: ")
    also = cli(run_root, "continuous_x", "revert", MLOPS_DEBUG="1")
    assert "Traceback (most recent call last)" in also.stderr


def test_a_secret_parameter_never_shows_in_an_error(run_root: Path) -> None:
    run_dir = run_root / "watson_openscale-test"
    run_dir.mkdir(parents=True)
    (run_dir / "state.json").write_text(json.dumps({"x": SECRET})[:-3])  # corrupt, with it
    for args in (["-p", "ibm_api_kee", SECRET], ["-p", "ibm_api_key", SECRET]):
        done = cli(run_root, "watson_openscale", "score", *args)
        assert done.returncode != 0
        assert SECRET not in done.stdout + done.stderr


def test_settings_check_names_the_source(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MLOPS_FEEDBACK_LABEL_NOISE=2\n")
    settings = Settings.load("watson_openscale", env_file=env_file, environ={})
    with pytest.raises(
        ConfigError,
        match=r"'feedback_label_noise' from \.env entry "
        r"MLOPS_FEEDBACK_LABEL_NOISE is '2'",
    ):
        settings.check()
