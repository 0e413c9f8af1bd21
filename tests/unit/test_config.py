from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.config import MASK, Secret, Settings, mask_text, sanitize_suffix
from mlops_helpers.errors import ConfigError


def load(tmp_path: Path, params=None, environ=None, dotenv: str = "", defaults=None) -> Settings:
    env_file = tmp_path / ".env"
    env_file.write_text(dotenv)
    return Settings.load(
        "demo", params=params, defaults=defaults, env_file=env_file, environ=environ or {}
    )


def test_precedence_parameter_env_dotenv_default(tmp_path: Path) -> None:
    defaults = {"region": "d", "a": "d", "b": "d", "c": "d"}
    s = load(
        tmp_path,
        params={"a": "param"},
        environ={"A": "env", "B": "env"},
        dotenv="A=dot\nB=dot\nC=dot\n",
        defaults=defaults,
    )
    assert s.get("a") == "param"
    assert s.get("b") == "env"
    assert s.get("c") == "dot"
    assert s.get("region") == "d"
    assert s.get("missing", "fallback") == "fallback"


def test_mlops_prefix_wins_over_plain_name(tmp_path: Path) -> None:
    s = load(tmp_path, environ={"MLOPS_AWS_REGION": "eu-west-1", "AWS_REGION": "us-east-2"})
    assert s.get("aws_region") == "eu-west-1"
    assert s.source_of("aws_region")[0] == "environment variable MLOPS_AWS_REGION"


def test_bad_value_names_key_source_and_value(tmp_path: Path) -> None:
    s = load(tmp_path, environ={"TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match=r"'timeout' from environment variable TIMEOUT.*soon"):
        s.get("timeout", cast=int)


def test_bool_values(tmp_path: Path) -> None:
    s = load(tmp_path, environ={"FLAG": "yes", "OTHER": "maybe"})
    assert s.get("flag", cast=bool) is True
    with pytest.raises(ConfigError, match="other"):
        s.get("other", cast=bool)


def test_require_names_the_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AWS_REGION.*MLOPS_AWS_REGION"):
        load(tmp_path).require("aws_region")


def test_secrets_are_masked_everywhere(tmp_path: Path) -> None:
    s = load(tmp_path, params={"ibm_api_key": "abcd-1234-secret"}, defaults={"region": "x"})
    key = s.get("ibm_api_key")
    assert isinstance(key, Secret)
    assert key.reveal() == "abcd-1234-secret"
    assert "abcd" not in repr(key) and "abcd" not in str(key) and "abcd" not in repr(s)
    assert s.describe()["ibm_api_key"].startswith(MASK)
    text = mask_text("login with abcd-1234-secret failed", s.secrets())
    assert text == f"login with {MASK} failed"


def test_secret_from_environment_is_masked_in_messages(tmp_path: Path) -> None:
    s = load(tmp_path, environ={"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"})
    assert "wJalr" not in mask_text("key=wJalrXUtnFEMI", s.secrets())


def test_attendee_suffix_and_names(tmp_path: Path) -> None:
    s = load(tmp_path, params={"attendee": "Jane Doe!"})
    assert s.attendee == "jane-doe"
    assert s.name("endpoint") == "endpoint-jane-doe"
    assert sanitize_suffix("A" * 40) == "a" * 16
    with pytest.raises(ConfigError, match="MLOPS_ATTENDEE"):
        sanitize_suffix("!!!")


def test_run_dir_is_per_scenario_and_attendee(tmp_path: Path) -> None:
    s = load(tmp_path, params={"attendee": "jd", "run_root": str(tmp_path / "r")})
    assert s.run_dir == (tmp_path / "r" / "demo-jd").resolve()
    assert s.run_dir.is_dir()


def test_backend_defaults_to_local(tmp_path: Path) -> None:
    assert load(tmp_path).backend == "local"
    assert load(tmp_path, params={"backend": "aws"}).backend == "aws"
