"""Settings: notebook parameters > environment variables > ``.env`` > defaults.

A key such as ``aws_region`` is looked up as ``MLOPS_AWS_REGION`` and then ``AWS_REGION``
in the environment and in ``.env``, so both workshop-specific and the clouds' own variable
names work. Values whose key looks secret are wrapped in ``Secret`` and never printed.

The SDKs and tools (boto3, python-chi, terraform, dvc, cml, kubectl ...) read only the real
environment, so ``Settings.export_env()`` writes every resolved tool setting (``aws_region``,
``os_auth_url``, ``repo_token`` ...) into ``os.environ`` under its tool's own name before any
client or subprocess starts; ``tool_env()`` is the same mapping for a child's ``env=``.
Settings with a type or range (thresholds in [0, 1], counts >= 1 ...) are declared in
``SETTING_SPECS``; ``Settings.check()`` turns a bad value from any source into one line.
"""

from __future__ import annotations

import getpass
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlops_helpers import paths
from mlops_helpers.errors import ConfigError

T = TypeVar("T")

SECRET_KEY_PATTERN = re.compile(r"(key|secret|token|password|passwd|credential)", re.IGNORECASE)
MASK = "****"
_SUFFIX_ALLOWED = re.compile(r"[^a-z0-9]+")


class Secret:
    """A secret value: masked in repr, str, logs and tracebacks; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_PATTERN.search(key))


def mask_text(text: str, secrets: list[Secret]) -> str:
    """Replace every secret value that appears in ``text`` with the mask."""
    for secret in secrets:
        value = secret.reveal()
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def sanitize_suffix(raw: str) -> str:
    """Attendee suffix: lower-case letters and digits joined by '-', at most 16 characters."""
    cleaned = _SUFFIX_ALLOWED.sub("-", raw.lower()).strip("-")[:16].strip("-")
    if not cleaned:
        raise ConfigError(
            f"attendee suffix {raw!r} has no letters or digits; set MLOPS_ATTENDEE to your "
            f"initials, for example MLOPS_ATTENDEE=jd"
        )
    return cleaned


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true/false, yes/no, on/off, 1/0")


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


# Tool settings: exported under these names (``key.upper()``) for SDKs and subprocesses.
TOOL_PREFIXES = (
    "AWS_",
    "OS_",
    "IBM_",
    "CHI_",
    "REPO_TOKEN",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "KUBECONFIG",
    "MLFLOW_TRACKING_",
    "DAGSHUB_",
)
# the same value under a second name some tools read instead (botocore: AWS_DEFAULT_REGION)
TOOL_ALIASES = {"AWS_REGION": ("AWS_DEFAULT_REGION",)}


@dataclass(frozen=True)
class SettingSpec:
    """A setting's type and allowed range; ``check`` turns a raw value into a valid one."""

    kind: type = str  # str, int, float or bool
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # minimum itself is not allowed (timeouts, C)
    choices: tuple[str, ...] = ()
    meaning: str = ""

    def describe(self) -> str:
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        parts = [
            {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[
                self.kind
            ]
        ]
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"in [{self.minimum:g}, {self.maximum:g}]")
        elif self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}")
        return " ".join(parts)

    def check(self, key: str, raw: Any, source: str = "parameter") -> Any:
        why = f"setting '{key}' from {source} is {raw!r}, but it must be {self.describe()}"
        if self.meaning:
            why += f" ({self.meaning})"
        try:
            value = _cast(self.kind, raw)
        except (TypeError, ValueError):
            raise ConfigError(why) from None
        if self.choices and str(value) not in self.choices:
            raise ConfigError(why)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(why)
        if self.minimum is not None and (
            value < self.minimum or (self.exclusive_minimum and value == self.minimum)
        ):
            raise ConfigError(why)
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(why)
        return value


def _cast(kind: type, raw: Any) -> Any:
    if kind is bool:
        return raw if isinstance(raw, bool) else _bool(str(raw))
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError("not a whole number")
        return int(float(raw)) if isinstance(raw, str) and "." in raw else int(raw)
    if kind is float:
        if isinstance(raw, bool):
            raise ValueError("not a number")
        return float(raw)
    return str(raw)


_FRACTION = SettingSpec(float, 0.0, 1.0)
_COUNT = SettingSpec(int, 1)
_SECONDS = SettingSpec(float, 0.0, exclusive_minimum=True, meaning="seconds")
_POSITIVE = SettingSpec(float, 0.0, exclusive_minimum=True)

# Settings shared by every scenario, and every setting that has a type or range. A scenario's
# known settings are these, its pipeline's defaults and its cloud backends' settings.
COMMON_SETTINGS = ("backend", "attendee", "run_root", "poll_interval", "stage_lock_timeout")
SETTING_SPECS: dict[str, SettingSpec] = {
    "poll_interval": _SECONDS,
    "stage_lock_timeout": SettingSpec(float, 0.0, meaning="seconds a stage waits for another"),
    # quality gates: fractions
    "min_accuracy": SettingSpec(float, 0.0, 1.0, meaning="a gate's accuracy threshold"),
    "min_weighted_f1": _FRACTION,
    "min_weighted_precision": _FRACTION,
    "min_weighted_recall": _FRACTION,
    "feedback_label_noise": _FRACTION,
    # counts
    "min_feedback_data_size": _COUNT,
    "max_rows_per_evaluation": _COUNT,
    "score_requests": _COUNT,
    "rows_per_request": _COUNT,
    "feedback_rows": _COUNT,
    "max_depth": _COUNT,
    "min_samples_leaf": _COUNT,
    "serve_workers": _COUNT,
    "training_instance_count": _COUNT,
    "endpoint_instance_count": _COUNT,
    "replicas": _COUNT,
    "max_iter": _COUNT,
    "n_estimators": _COUNT,
    "lease_hours": _COUNT,
    "ssh_port": SettingSpec(int, 1, 65535),
    # model knobs
    "C": _POSITIVE,
    "news_c": _POSITIVE,
    "criterion": SettingSpec(choices=("gini", "entropy", "log_loss")),
    "model_type": SettingSpec(choices=("logistic_regression", "random_forest")),
    "revert_environment": SettingSpec(choices=("staging", "canary", "production")),
    "canary_gate": SettingSpec(choices=("on", "off")),
    "canary_weight": _FRACTION,
    "canary_max_error_increase": _FRACTION,
    "canary_min_requests": _COUNT,
    "canary_max_p50_ratio": SettingSpec(float, 1.0),
    "canary_p50_slack_ms": SettingSpec(float, 0.0),
    # bounded waits
    "train_timeout": _SECONDS,
    "max_runtime": _SECONDS,
    "status_timeout": _SECONDS,
    "deploy_timeout": _SECONDS,
    "dvc_timeout": _SECONDS,
    "endpoint_timeout": _SECONDS,
    "kind_timeout": _SECONDS,
    "rollout_timeout": _SECONDS,
    "payload_timeout": _SECONDS,
    "monitor_timeout": _SECONDS,
    "provision_timeout": _SECONDS,
    "subscription_timeout": _SECONDS,
    "space_timeout": _SECONDS,
    "feedback_timeout": _SECONDS,
    "ibm_retry_after_max": _SECONDS,
    "ibm_rate_limit_retries": SettingSpec(int, 0),
    "ibm_model_runtime": SettingSpec(choices=("ibm-runtime", "project")),
    # notebook switches (``-p solutions true``: the exercise cells apply their solutions)
    "solutions": SettingSpec(bool),
    "gate_demos": SettingSpec(bool),
}


def check_setting(key: str, value: Any, source: str = "parameter") -> Any:
    """``value`` typed and range-checked when ``key`` is declared in ``SETTING_SPECS`` (else
    unchanged); a bad value raises ``ConfigError`` with one line naming key, source and rule.
    The one check for stage parameters, notebook parameters and environment values."""
    spec = SETTING_SPECS.get(key)
    return value if spec is None or value is None else spec.check(key, value, source)


# Settings a scenario's code reads that have no default in its pipeline (tests/faults/
# test_inputs.py scans the code so this list cannot fall behind).
SCENARIO_SETTINGS: dict[str, tuple[str, ...]] = {
    "continuous_x": (
        "version",
        "chi_flavor",
        "chi_image",
        "lease_hours",
        "provision_timeout",
        "ssh_port",
        "api_allowed_cidr",
        "gitops_repo",
        "canary_gate",
    ),
    "watson_openscale": (
        "payload_timeout",
        "monitor_timeout",
        "subscription_timeout",
        "space_timeout",
        "ibm_hardware_spec",
        "ibm_software_spec",
        "ibm_wml_instance_name",
        "ibm_ca_bundle",
        "ibm_iam_url",
        "ibm_platform_url",
        "ibm_model_runtime",
        "ibm_rate_limit_retries",
        "ibm_retry_after_max",
        "feedback_timeout",
        "model_name",
    ),
    "dvc_cml": ("s3_endpoint_url", "aws_session_token"),
    "sagemaker_byo": (
        "aws_account_id",
        "aws_default_region",
        "aws_endpoint_url",
        "aws_session_token",
        "ecr_repository",
        "endpoint_timeout",
        "container_dir",
    ),
    "seldon_kind": ("kind_timeout", "rollout_timeout", "models_dir"),
}


@dataclass
class Settings:
    """Resolved configuration for one scenario run.

    Parameters passed in (for example a notebook's ``parameters`` cell) win over the
    environment, which wins over ``.env``, which wins over the defaults.
    """

    scenario: str
    params: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    dotenv: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        scenario: str,
        params: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        env_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        env_path = env_file if env_file is not None else paths.project_root() / ".env"
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return cls(
            scenario=scenario,
            params=clean,
            defaults=dict(defaults or {}),
            environ=dict(os.environ if environ is None else environ),
            dotenv=_read_dotenv(env_path),
        )

    # -- lookup -------------------------------------------------------------------------
    def _env_names(self, key: str) -> tuple[str, str]:
        upper = key.upper()
        return (f"MLOPS_{upper}", upper)

    def source_of(self, key: str) -> tuple[str, Any] | None:
        """Where ``key`` comes from and its raw value: ('parameter'|'environment'|...)."""
        if key in self.params:
            return ("parameter", self.params[key])
        for name in self._env_names(key):
            if name in self.environ and self.environ[name] != "":
                return (f"environment variable {name}", self.environ[name])
        for name in self._env_names(key):
            if name in self.dotenv and self.dotenv[name] != "":
                return (f".env entry {name}", self.dotenv[name])
        if key in self.defaults:
            return ("default", self.defaults[key])
        return None

    def get(self, key: str, default: Any = None, cast: Callable[[Any], T] | None = None) -> Any:
        """The value of ``key`` cast with ``cast``; a bad value raises ``ConfigError``."""
        found = self.source_of(key)
        if found is None:
            return default
        source, raw = found
        if is_secret_key(key):
            return raw if isinstance(raw, Secret) else Secret(str(raw))
        if cast is None:
            return raw
        if cast is bool and isinstance(raw, str):
            cast = _bool  # type: ignore[assignment]
        try:
            return cast(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"setting '{key}' from {source} has value {raw!r}, which is not a valid "
                f"{getattr(cast, '__name__', 'value')}: {exc}"
            ) from exc

    def require(self, key: str, cast: Callable[[Any], T] | None = None, why: str = "") -> Any:
        value = self.get(key, cast=cast)
        if value is None or (isinstance(value, Secret) and not value):
            env_a, env_b = self._env_names(key)
            because = f" ({why})" if why else ""
            raise ConfigError(
                f"setting '{key}' is not set{because}: pass it as a notebook parameter or set "
                f"{env_b} (or {env_a}) in the environment or in .env"
            )
        return value

    def secret(self, key: str) -> Secret | None:
        value = self.get(key)
        if value is None:
            return None
        return value if isinstance(value, Secret) else Secret(str(value))

    def secrets(self) -> list[Secret]:
        keys = set(self.params) | set(self.defaults)
        found = [self.secret(k) for k in keys if is_secret_key(k)]
        env_values = [
            Secret(v)
            for source in (self.environ, self.dotenv)
            for k, v in source.items()
            if is_secret_key(k) and v
        ]
        return [s for s in found if s] + env_values

    def has(self, *keys: str) -> bool:
        """True when every key is set from any source (used for credential checks)."""
        return all(self.source_of(k) is not None for k in keys)

    def keys(self) -> set[str]:
        """Every key set from any source (environment names lower-cased, MLOPS_ dropped)."""
        found = set(self.params) | set(self.defaults)
        for source in (self.environ, self.dotenv):
            for name in source:
                found.add(
                    name[len("MLOPS_") :].lower() if name.startswith("MLOPS_") else name.lower()
                )
        return found

    # -- reaching the SDKs and tools ----------------------------------------------------
    def tool_env(self) -> dict[str, str]:
        """Every resolved tool setting under its tool's own variable name (secrets revealed:
        for a child process's ``env=`` or ``os.environ`` only, never for printing)."""
        env: dict[str, str] = {}
        for key in sorted(self.keys()):
            name = key.upper()
            if not name.startswith(TOOL_PREFIXES):
                continue
            value = self.get(key)
            text = value.reveal() if isinstance(value, Secret) else value
            if text is None or str(text) == "":
                continue
            env[name] = str(text)
        for name, aliases in TOOL_ALIASES.items():
            for alias in aliases:
                if name in env and self.source_of(alias.lower()) is None:
                    env[alias] = env[name]
        return env

    def export_env(self, environ: MutableMapping[str, str] | None = None) -> list[str]:
        """Write ``tool_env()`` into ``environ`` (default ``os.environ``) so boto3,
        python-chi and every subprocess see the resolved values; returns the names only."""
        target = os.environ if environ is None else environ
        env = self.tool_env()
        target.update(env)
        return sorted(env)

    # -- types and ranges ---------------------------------------------------------------
    def check(self, keys: Iterable[str] | None = None) -> None:
        """Check every declared setting in ``keys`` (default: all set ones) wherever it comes
        from; the first bad one raises ``ConfigError`` with a one-line message."""
        for key in sorted(self.keys() if keys is None else keys):
            found = self.source_of(key)
            if found is not None:
                check_setting(key, found[1], found[0])

    # -- derived values -----------------------------------------------------------------
    @property
    def backend(self) -> str:
        return str(self.get("backend", "local"))

    @property
    def attendee(self) -> str:
        raw = self.get("attendee")
        if raw is None:
            try:
                raw = getpass.getuser()
            except (KeyError, OSError):
                raw = "attendee"
        return sanitize_suffix(str(raw))

    def name(self, base: str) -> str:
        """A resource name that carries the attendee's suffix: ``base-<suffix>``."""
        return f"{base}-{self.attendee}"

    @property
    def run_root(self) -> Path:
        raw = self.get("run_root")
        return Path(raw).expanduser().resolve() if raw else paths.project_root() / "runs"

    @property
    def run_dir(self) -> Path:
        """The scenario's run directory; every stage of one run reads and writes here."""
        path = self.run_root / f"{self.scenario}-{self.attendee}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def describe(self) -> dict[str, str]:
        """Every known key with its source and a printable (masked) value."""
        keys = sorted(set(self.params) | set(self.defaults))
        rows: dict[str, str] = {}
        for key in keys:
            found = self.source_of(key)
            if found is None:
                continue
            source, raw = found
            shown = MASK if is_secret_key(key) else repr(raw)
            rows[key] = f"{shown}  ({source})"
        return rows

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v.split('  (')[0]}" for k, v in self.describe().items())
        return f"Settings(scenario={self.scenario!r}, {shown})"
