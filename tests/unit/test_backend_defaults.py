"""A setting's default lives once, in its scenario's spec: a backend's own default (how often
the ibm backend polls) is declared on its ``Backend``, and no default reaches a tool's
environment, where it would hide a value set later in the same process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.errors import ConfigError
from mlops_helpers.scenario import Backend, Scenario, format_settings, seconds

NO_ENV_FILE = Path("/nonexistent/.env")


def load(scenario: str, environ: dict[str, str] | None = None, **params: Any) -> Settings:
    return Settings.load(scenario, params=params, environ=environ or {}, env_file=NO_ENV_FILE)


@pytest.mark.parametrize(
    ("scenario", "backend", "expected"),
    [
        ("watson_openscale", "ibm", 5.0),
        ("continuous_x", "chameleon", 10.0),
        ("watson_openscale", "local", None),  # the local backends keep their own pace
    ],
)
def test_a_backend_s_own_default_is_read_typed(
    scenario: str, backend: str, expected: float | None
) -> None:
    assert load(scenario, backend=backend).poll_interval == expected


def test_a_set_value_wins_over_the_backend_s_default() -> None:
    from_env = load("watson_openscale", {"MLOPS_POLL_INTERVAL": "2"}, backend="ibm")
    assert from_env.poll_interval == 2.0
    assert load("continuous_x", backend="chameleon", poll_interval=1).poll_interval == 1.0


def test_the_settings_listing_shows_each_backend_s_default() -> None:
    from mlops_helpers.continuous_x.spec import SCENARIO

    row = next(line for line in format_settings(SCENARIO).splitlines() if "poll_interval" in line)
    assert "chameleon: 10.0" in row


def test_a_backend_default_must_be_declared_and_obey_its_rule() -> None:
    def spec(**defaults: Any) -> Scenario:
        backends = (Backend("local"), Backend("cloud", defaults=defaults))
        settings = (seconds("wait_timeout", 60.0, "how long a wait may take"),)
        return Scenario("toy", "Toy", "toy.ipynb", "toy.stages", backends, settings)

    assert spec(wait_timeout=5.0).defaults("cloud")["wait_timeout"] == 5.0
    assert spec(wait_timeout=5.0).defaults("local")["wait_timeout"] == 60.0
    with pytest.raises(ValueError, match="backend 'cloud' sets 'no_such_setting'"):
        spec(no_such_setting=1)
    with pytest.raises(ConfigError, match="backend cloud's defaults"):
        spec(poll_interval=-1.0)


def test_a_declared_default_stays_out_of_the_tools_environment() -> None:
    """IBM_HARDWARE_SPEC and CHI_SITE have defaults: the tools see only what was set."""
    defaulted = load("watson_openscale").tool_env()
    assert "IBM_HARDWARE_SPEC" not in defaulted and "IBM_IAM_URL" not in defaulted
    set_ = load("watson_openscale", {"IBM_IAM_URL": "https://iam.example"}, ibm_hardware_spec="M")
    assert set_.tool_env()["IBM_HARDWARE_SPEC"] == "M"
    assert set_.tool_env()["IBM_IAM_URL"] == "https://iam.example"
    assert "CHI_SITE" not in load("continuous_x").tool_env()
    assert load("continuous_x").chi_site == "KVM@TACC"  # read typed all the same
