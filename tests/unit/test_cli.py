from __future__ import annotations

import subprocess
import sys

import pytest

from mlops_helpers.cli import _value, main


def test_doctor_reports_absent_engine_and_credentials(capsys, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "IBM_API_KEY", "OS_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "docker engine" in out
    assert "credentials  aws" in out and "not set" in out
    assert "kind" in out


def test_doctor_never_prints_secret_values(capsys, monkeypatch) -> None:
    monkeypatch.setenv("IBM_API_KEY", "very-secret-value-123")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "very-secret-value-123" not in out
    assert "IBM_API_KEY set" in out


def test_run_unknown_notebook_is_refused(capsys) -> None:
    assert main(["run", "nope"]) == 2
    assert "unknown notebook 'nope'" in capsys.readouterr().err


def test_unknown_command_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    "text,expected",
    [("1", 1), ("0.8", 0.8), ("true", True), ("hello", "hello"), ("[1, 2]", "[1, 2]")],
)
def test_param_values_parse_like_papermill(text: str, expected: object) -> None:
    assert _value(text) == expected


def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlops_helpers.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "doctor" in done.stdout and "seldon_kind" in done.stdout


def test_import_is_light() -> None:
    code = (
        "import sys, mlops_helpers, mlops_helpers.cli;"
        "heavy = [m for m in ('numpy', 'pandas', 'sklearn', 'boto3', 'mlflow', 'dvc')"
        " if m in sys.modules]; print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]"
