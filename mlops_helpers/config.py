"""Settings: notebook parameters > environment variables > ``.env`` > defaults.

A key such as ``aws_region`` is looked up as ``MLOPS_AWS_REGION`` and then ``AWS_REGION``
in the environment and in ``.env``, so both workshop-specific and the clouds' own variable
names work. Values whose key looks secret are wrapped in ``Secret`` and never printed.

The SDKs and tools (boto3, python-chi, terraform, dvc, cml, kubectl ...) read only the real
environment, so ``Settings.export_env()`` writes every resolved tool setting (``aws_region``,
``os_auth_url``, ``repo_token`` ...) into ``os.environ`` under its tool's own name before any
client or subprocess starts; ``tool_env()`` is the same mapping for a child's ``env=``.
Every setting a scenario reads is declared once in its spec (``scenario.py``: type, range,
default, help, secret) and read typed as ``settings.min_accuracy``; a bad value from any
source is one line (``Settings.check()``), and reading an undeclared name is a bug that fails
loudly.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_helpers import paths
from mlops_helpers.errors import ConfigError
from mlops_helpers.scenario import is_secret_key, parse_bool

if TYPE_CHECKING:
    from mlops_helpers.scenario import Scenario, Setting

T = TypeVar("T")

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


@dataclass
class Settings:
    """Resolved configuration for one scenario run.

    Parameters passed in (for example a notebook's ``parameters`` cell) win over the
    environment, which wins over ``.env``, which wins over the defaults. For a registered
    scenario every name is declared in its spec: ``settings.min_accuracy`` is the typed,
    checked value (its declared default when nothing sets it), and an undeclared name is an
    error, never a silent ``None``.
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
        spec = _spec_of(scenario)
        declared = spec.defaults() if spec is not None else _common_defaults()
        settings = cls(
            scenario=scenario,
            params=clean,
            defaults={**declared, **{k: v for k, v in (defaults or {}).items() if v is not None}},
            environ=dict(os.environ if environ is None else environ),
            dotenv=_read_dotenv(env_path),
        )
        if spec is not None:  # the chosen backend's own defaults (ibm polls every 5 s)
            settings.defaults = {**spec.defaults(settings.backend), **(defaults or {})}
        return settings

    @property
    def spec(self) -> Scenario | None:
        """The scenario's declaration (None for the doctor's or the CLI's own settings)."""
        return _spec_of(self.scenario)

    def _declared(self, key: str) -> Setting | None:
        """``key``'s declaration; for a scenario, an undeclared key is an error."""
        spec = self.spec
        if spec is None:
            from mlops_helpers.scenario import COMMON_SETTINGS

            return next((s for s in COMMON_SETTINGS if s.name == key), None)
        return spec.setting(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in type(self).__dataclass_fields__:
            raise AttributeError(name)
        spec = _spec_of(self.__dict__.get("scenario", ""))
        if spec is None or name not in spec.declared():
            raise AttributeError(f"'{self.__dict__.get('scenario')}' declares no setting '{name}'")
        return self.get(name)

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
        """The value of ``key``: typed by its declaration (or cast with ``cast``); a bad
        value raises ``ConfigError`` in one line. Prefer ``settings.<name>``."""
        declared = self._declared(key)
        found = self.source_of(key)
        if found is None or found[1] is None:  # a None default: not set
            return default
        source, raw = found
        if declared is not None and declared.secret or is_secret_key(key):
            return raw if isinstance(raw, Secret) else Secret(str(raw))
        if declared is not None and cast is None:
            return declared.check(raw, source)
        if cast is None:
            return raw
        if cast is bool and isinstance(raw, str):
            cast = parse_bool  # type: ignore[assignment]
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
        found = self.source_of(key)
        if found is None:
            return None
        raw = found[1]
        return raw if isinstance(raw, Secret) else Secret(str(raw))

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
        """Every tool setting that is set (not defaulted), under its tool's own variable
        name (secrets revealed: for a child's ``env=`` or ``os.environ`` only, never for
        printing)."""
        env: dict[str, str] = {}
        for key in sorted(self.keys()):
            name = key.upper()
            if not name.startswith(TOOL_PREFIXES):
                continue
            found = self.source_of(key)  # raw: the tools read names no scenario declares
            # a declared default is the workshop's, not the tool's: exported, it would hide
            # a later .env value in the same process (a notebook's kernel)
            if found is None or found[0] == "default":
                continue
            value = found[1]
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
        from; the first bad one raises ``ConfigError`` with a one-line message. Names the
        scenario does not declare (the environment holds many) are not its to check."""
        spec = self.spec
        for key in sorted(self.keys() if keys is None else keys):
            found = self.source_of(key)
            if found is None or is_secret_key(key):
                continue
            if spec is not None and key in spec.declared():
                spec.check(key, found[1], found[0])
            elif spec is None and (declared := self._declared(key)) is not None:
                declared.check(found[1], found[0])

    # -- derived values -----------------------------------------------------------------
    @property
    def backend(self) -> str:
        return str(self.get("backend") or "local")

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


def _spec_of(scenario: str) -> Scenario | None:
    from mlops_helpers.scenarios import find_scenario

    return find_scenario(scenario)


def _common_defaults() -> dict[str, Any]:
    from mlops_helpers.scenario import COMMON_SETTINGS

    return {s.name: s.default for s in COMMON_SETTINGS if s.default is not None}
