"""Settings: notebook parameters > environment variables > ``.env`` > defaults.

A key such as ``aws_region`` is looked up as ``MLOPS_AWS_REGION`` and then ``AWS_REGION``
in the environment and in ``.env``, so both workshop-specific and the clouds' own variable
names work. Values whose key looks secret are wrapped in ``Secret`` and never printed.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Mapping
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
