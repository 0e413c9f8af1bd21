"""A scenario's spec: settings declared once and read typed, backends checked against the
pipeline, the settings table; every installed scenario's spec holds together."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.config import Secret, Settings
from mlops_helpers.errors import ConfigError, UnknownNameError
from mlops_helpers.scenario import (
    Backend,
    Cloud,
    Scenario,
    Setting,
    count,
    format_settings,
    fraction,
    seconds,
    text,
)
from mlops_helpers.scenarios import all_scenarios

SPEC = Scenario(
    "demo",
    "a demo",
    "99_demo.ipynb",
    "nowhere",
    (
        Backend("local"),
        Backend(
            "cloud", cloud=Cloud("acme", (("acme_token",),), "a token", (text("acme_region", "r"),))
        ),
    ),
    (fraction("min_accuracy", 0.9, "the gate"), count("replicas", 2, "servers")),
)


def test_a_default_must_obey_its_own_rule() -> None:
    with pytest.raises(ConfigError, match=r"'min_accuracy' from its declaration is 1\.5"):
        fraction("min_accuracy", 1.5, "the gate")
    with pytest.raises(ConfigError, match="must be one of a, b"):
        Setting("pick", "c", "one", choices=("a", "b"))


def test_kinds_come_from_defaults_and_secrets_from_names() -> None:
    assert Setting("n", 3).kind is int and Setting("flag", False).kind is bool
    assert Setting("name").kind is str and not Setting("name").secret
    assert Setting("repo_token").secret and Setting("plain", secret=True).secret
    assert seconds("wait", 5.0, "a wait").describe() == "a number > 0"


def test_a_setting_is_declared_once() -> None:
    twice = (Setting("n", 1), Setting("n", 2))
    with pytest.raises(ValueError, match="'n' is declared twice"):
        Scenario("x", "x", "x.ipynb", "m", (Backend("local"),), twice)
    # a common setting may get the scenario's own default
    own = Scenario(
        "x", "x", "x.ipynb", "m", (Backend("local"),), (seconds("poll_interval", 30.0, "p"),)
    )
    assert own.defaults()["poll_interval"] == 30.0


def test_declared_settings_are_common_own_and_the_clouds() -> None:
    declared = SPEC.declared()
    assert {"backend", "attendee", "run_root", "min_accuracy", "replicas"} <= declared.keys()
    assert {"acme_token", "acme_region"} <= declared.keys()
    assert SPEC.defaults()["replicas"] == 2 and "acme_region" not in SPEC.defaults()
    assert SPEC.check("replicas", "4") == 4
    with pytest.raises(UnknownNameError, match="unknown demo backend 'moon'"):
        SPEC.check("backend", "moon")
    with pytest.raises(UnknownNameError, match="unknown demo setting 'replica'"):
        SPEC.check("replica", 1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """watson_openscale's settings, with one value from the environment and one secret."""
    environ = {"MLOPS_MIN_ACCURACY": "0.75", "IBM_API_KEY": "k-123456", "HOME": str(tmp_path)}
    return Settings.load(
        "watson_openscale", {"feedback_rows": "20"}, env_file=tmp_path / "none", environ=environ
    )


def test_settings_are_read_typed_with_the_declared_default(settings: Settings) -> None:
    assert settings.min_accuracy == 0.75  # the environment's text, typed
    assert settings.feedback_rows == 20  # the parameter's text, typed
    assert settings.min_weighted_f1 == 0.8  # nothing sets it: the spec's default
    assert isinstance(settings.ibm_api_key, Secret) and str(settings.ibm_api_key) == "****"


def test_an_undeclared_name_is_an_error_not_none(settings: Settings) -> None:
    with pytest.raises(AttributeError, match="declares no setting 'min_acuracy'"):
        _ = settings.min_acuracy
    with pytest.raises(UnknownNameError, match="unknown watson_openscale setting"):
        settings.get("min_acuracy")


def test_a_bad_value_from_the_environment_is_one_line(tmp_path: Path) -> None:
    bad = Settings.load(
        "watson_openscale", env_file=tmp_path / "none", environ={"MIN_ACCURACY": "high"}
    )
    with pytest.raises(ConfigError, match="from environment variable MIN_ACCURACY is 'high'"):
        _ = bad.min_accuracy


def test_the_pipeline_must_register_the_declared_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "demo_stages.py").write_text(
        "from mlops_helpers.backends import BackendRegistry\n"
        "from mlops_helpers.pipeline import Pipeline, Stage\n"
        "REGISTRY = BackendRegistry('demo')\n"
        "REGISTRY.register('local')(object)\n"
        "PIPELINE = Pipeline('demo', [Stage('cleanup', lambda ctx: {}, 'x')], REGISTRY)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = Scenario("demo", "d", "d.ipynb", "demo_stages", (Backend("local"), Backend("cloud")))
    with pytest.raises(ValueError, match=r"registers backends \['local'\], but its spec"):
        spec.pipeline()


def test_the_settings_table_shows_no_secret_value() -> None:
    table = format_settings(SPEC)
    assert "min_accuracy" in table and "a number in [0, 1]" in table and "0.9" in table
    assert "(secret)" in table and "ACME_TOKEN" in table


@pytest.mark.parametrize("name", list(all_scenarios()))
def test_every_installed_spec_holds_together(name: str) -> None:
    spec = all_scenarios()[name]
    assert spec.notebook_path().is_file()
    assert spec.pipeline().stage_names()[-1] == "cleanup"
    assert all(s.help for s in spec.declared().values()), "every setting says what it is"
    assert "local" in spec.backend_names()


def test_env_example_is_written_from_the_specs() -> None:
    from mlops_helpers.env_example import render
    from mlops_helpers.paths import project_root

    committed = (project_root() / ".env.example").read_text()
    assert committed == render(), ".env.example is stale: run `make env-example`"
    assert "REPO_TOKEN=" in committed and "# CHI_SITE=KVM@TACC  (the default)" in committed
