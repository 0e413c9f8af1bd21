"""`run -p`: unknown names are refused before anything runs; secrets reach the kernel's
environment and never the executed notebook; the kernel talks over IPC, so no transport
warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.cli import main
from mlops_helpers.notebooks import params_per_notebook, split_params
from tests.fixtures.notebooks import Maker

SECRET = "sk-live-3f9a61c0d2e84b7f"  # made up; what must never land in a notebook


def test_unknown_parameter_is_refused_with_the_known_names(
    tiny_notebook: Maker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_notebook(["print('ran')"])
    out = tmp_path / "build"
    assert main(["run", "preflight", "-p", "min_acuracy", "0.95", "--output-dir", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert "'min_acuracy'" in err and "backend, min_accuracy" in err
    assert not out.exists(), "nothing runs when a parameter name is wrong"


def test_parameters_are_split_into_notebook_and_environment(tiny_notebook: Maker) -> None:
    tiny_notebook([])
    parameters, environment = split_params(
        "preflight", {"min_accuracy": 0.95, "ibm_api_key": SECRET}
    )
    assert parameters == {"min_accuracy": 0.95}
    assert environment == {"MLOPS_IBM_API_KEY": SECRET}


def test_a_run_of_several_notebooks_takes_a_name_one_of_them_has() -> None:
    # the real notebooks: min_accuracy is sagemaker_byo's, not preflight's
    plan = params_per_notebook(["preflight", "sagemaker_byo"], {"min_accuracy": 0.95})
    assert plan == {"preflight": {}, "sagemaker_byo": {"min_accuracy": 0.95}}


@pytest.mark.notebook
def test_secret_reaches_the_kernel_but_not_the_notebook(
    tiny_notebook: Maker, tmp_path: Path, run_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tiny_notebook(
        [
            "import hashlib, os\n"
            "from mlops_helpers.config import Settings\n"
            "key = Settings.load('watson_openscale').secret('ibm_api_key').reveal()\n"
            "print('sha256', hashlib.sha256(key.encode()).hexdigest())",
        ]
    )
    out = tmp_path / "build"
    assert (
        main(
            [
                "run",
                "preflight",
                "-p",
                "ibm_api_key",
                SECRET,
                "-p",
                "min_accuracy",
                "0.5",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    captured = capfd.readouterr()
    text = (out / "00_preflight.ipynb").read_text()
    assert SECRET not in text, "the secret was written into the executed notebook"
    import hashlib

    assert hashlib.sha256(SECRET.encode()).hexdigest() in text, "the kernel did not get it"
    assert "min_accuracy = 0.5" in text, "an ordinary parameter is injected as usual"
    assert SECRET not in captured.out + captured.err
    assert "without encryption" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (("min_accuracy", "1.5"), "must be a number in [0, 1]"),
        (("ibm_apikey_typo", "x"), "reads no secret 'ibm_apikey_typo'; the secrets it reads: "),
    ],
    ids=["out-of-range", "unknown-secret"],
)
def test_bad_values_and_unknown_secrets_are_refused_before_anything_runs(
    pair: tuple[str, str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    argv = ["run", "watson_openscale", "-p", *pair, "--output-dir", str(out)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == "" and not out.exists()
