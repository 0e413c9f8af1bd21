"""One scenario, declared in one place: its settings, backends, pipeline and notebook.

Each scenario package has a ``spec.py`` with ``SCENARIO = Scenario(...)``, registered in the
``mlops_workshop.scenarios`` entry-point group (as papermill finds its engines in
``papermill.engine``); ``scenarios.py`` finds them. The CLI, the doctor, the notebook runner,
the room page and the settings all loop over the specs, so a new scenario is its own files
plus one entry-point line in its distribution (see CONTRIBUTING.md).

A ``Setting`` is declared once with its type, range, default, help and whether it is secret
(as nbclient declares its traitlets options); stages read it typed, ``ctx.settings.name``.
Importing this module and a ``spec.py`` is cheap: the pipeline is imported only when used.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_helpers.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from mlops_helpers.config import Settings
    from mlops_helpers.pipeline import Pipeline

SECRET_KEY_PATTERN = re.compile(r"(key|secret|token|password|passwd|credential)", re.IGNORECASE)
_KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def is_secret_key(key: str) -> bool:
    """A name that holds a credential (``ibm_api_key``, ``repo_token``): never shown."""
    return bool(SECRET_KEY_PATTERN.search(key))


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true/false, yes/no, on/off, 1/0")


def _cast(kind: type, raw: Any) -> Any:
    if kind is bool:
        return raw if isinstance(raw, bool) else parse_bool(str(raw))
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError("not a whole number")
        return int(float(raw)) if isinstance(raw, str) and "." in raw else int(raw)
    if kind is float:
        if isinstance(raw, bool):
            raise ValueError("not a number")
        return float(raw)
    return str(raw)


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, type and allowed range, help, and whether it is secret.

    ``kind`` defaults to the default's type (text when there is no default). A secret is read
    as ``Secret`` and never printed; by default a name with key/secret/token/password in it is.
    """

    name: str
    default: Any = None
    help: str = ""
    kind: type | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # the minimum itself is not allowed (timeouts, C)
    choices: tuple[str, ...] = ()
    secret: bool | None = None

    def __post_init__(self) -> None:
        if self.kind is None:
            inferred = type(self.default) if self.default is not None else str
            object.__setattr__(self, "kind", inferred if inferred in _KIND_WORDS else str)
        if self.secret is None:
            object.__setattr__(self, "secret", is_secret_key(self.name))
        if self.default is not None and not self.secret:
            self.check(self.default, "its declaration")  # a default must obey its own rule

    def describe(self) -> str:
        """The rule in words: ``a number in [0, 1]``, ``one of gini, entropy``."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        assert self.kind is not None
        words = _KIND_WORDS[self.kind]
        if self.minimum is not None and self.maximum is not None:
            return f"{words} in [{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f"{words} {'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        return words

    def check(self, raw: Any, source: str = "parameter") -> Any:
        """``raw`` typed and range-checked; a bad value raises ``ConfigError`` in one line
        naming the setting, where the value came from, and the rule."""
        why = f"setting '{self.name}' from {source} is {raw!r}, but it must be {self.describe()}"
        if self.help:
            why += f" ({self.help})"
        assert self.kind is not None
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


def seconds(name: str, default: float | None, help: str) -> Setting:
    """A bounded wait in seconds (more than zero)."""
    return Setting(name, default, f"{help}, in seconds", float, 0.0, exclusive_minimum=True)


def fraction(name: str, default: float | None, help: str) -> Setting:
    return Setting(name, default, help, float, 0.0, 1.0)


def count(name: str, default: int | None, help: str) -> Setting:
    return Setting(name, default, help, int, 1)


def text(name: str, help: str, default: str | None = None) -> Setting:
    return Setting(name, default, help, str)


# Every scenario reads these; a scenario's own settings come on top.
COMMON_SETTINGS: tuple[Setting, ...] = (
    Setting("backend", "local", "where the pipeline runs: local, or a cloud backend"),
    text("attendee", "your initials: the suffix of every resource name (default: your user)"),
    text("run_root", "the folder that holds each scenario's run folder (default: runs/)"),
    seconds("poll_interval", None, "how often a wait looks again"),
    Setting(
        "stage_lock_timeout",
        120.0,
        "seconds a stage waits for another stage in the same run folder",
        float,
        0.0,
    ),
    Setting("solutions", False, "the exercise cells apply their solutions (what CI runs)"),
)


@dataclass(frozen=True)
class Cloud:
    """A cloud account one or more backends need: which settings make up its credentials
    (any one group, fully set, counts; ``credentials_help`` says what they are), its other
    settings, declared like a scenario's, and what its absence means."""

    name: str
    credential_groups: tuple[tuple[str, ...], ...]
    credentials_help: str
    settings: tuple[Setting, ...] = ()
    meaning_when_absent: str = ""

    def credentials_present(self, settings: Settings) -> bool:
        return any(settings.has(*group) for group in self.credential_groups)

    def credential_names(self) -> str:
        return " or ".join(" + ".join(n.upper() for n in g) for g in self.credential_groups)

    def credential_settings(self) -> tuple[Setting, ...]:
        names = dict.fromkeys(n for group in self.credential_groups for n in group)
        return tuple(text(n, self.credentials_help) for n in names)

    def declared(self) -> tuple[Setting, ...]:
        return (*self.credential_settings(), *self.settings)


@dataclass(frozen=True)
class Tool:
    """A program a backend runs, and what its absence means here (the doctor's row)."""

    name: str
    when_absent: str = ""


@dataclass(frozen=True)
class Backend:
    """One backend of a scenario and what it needs on this machine."""

    name: str
    help: str = ""
    extras: tuple[str, ...] = ()  # pyproject extras ([aws], [ibm], ...)
    tools: tuple[Tool, ...] = ()  # programs on PATH
    cloud: Cloud | None = None  # needed: without its credentials the backend cannot run
    uses: tuple[Cloud, ...] = ()  # used when its credentials are there (a report's token)
    docker_engine: bool = False
    runtime: str | None = None  # a locked runtime the doctor checks (``seldon``)
    # this backend's own defaults of declared settings (the ibm backend polls every 5 s)
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """Everything about one scenario. ``pipeline`` and ``exercises`` are module paths,
    imported only when used (the pipeline module defines ``PIPELINE``, the exercises module
    ``EXERCISES``); ``notebook`` is a file name in ``notebooks/`` or an absolute path."""

    name: str
    title: str
    notebook: str
    pipeline_module: str
    backends: tuple[Backend, ...]
    settings: tuple[Setting, ...] = ()
    exercises_module: str | None = None
    _by_name: dict[str, Setting] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        declared = {s.name: s for s in COMMON_SETTINGS}
        own: set[str] = set()
        for setting in self.settings:
            if setting.name in own:
                raise ValueError(f"{self.name}: setting '{setting.name}' is declared twice")
            own.add(setting.name)
            declared[setting.name] = setting  # may give a common one its own default
        for setting in self._cloud_settings():  # unless the scenario declared it with help
            declared.setdefault(setting.name, setting)
        for backend in self.backends:  # a backend's default obeys its setting's rule too
            for name, value in backend.defaults.items():
                if name not in declared:
                    raise ValueError(f"{self.name}: backend '{backend.name}' sets '{name}'")
                declared[name].check(value, f"backend {backend.name}'s defaults")
        object.__setattr__(self, "_by_name", declared)

    def _cloud_settings(self) -> list[Setting]:
        return [setting for cloud in self.clouds() for setting in cloud.declared()]

    # -- what it declares -----------------------------------------------------------------
    def clouds(self) -> list[Cloud]:
        found: dict[str, Cloud] = {}
        for backend in self.backends:
            for cloud in (backend.cloud, *backend.uses):
                if cloud is not None:
                    found.setdefault(cloud.name, cloud)
        return list(found.values())

    def backend_names(self) -> list[str]:
        return [b.name for b in self.backends]

    def backend(self, name: str) -> Backend:
        for backend in self.backends:
            if backend.name == name:
                return backend
        raise UnknownNameError(f"{self.name} backend", name, self.backend_names())

    def declared(self) -> dict[str, Setting]:
        """Every setting this scenario reads, by name: the common ones, its own, and its
        cloud accounts' credentials and settings."""
        return dict(self._by_name)

    def setting(self, name: str) -> Setting:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNameError(f"{self.name} setting", name, list(self._by_name)) from None

    def defaults(self, backend: str | None = None) -> dict[str, Any]:
        """Every declared default; with ``backend``, that backend's own ones on top."""
        found = {n: s.default for n, s in self._by_name.items() if s.default is not None}
        own = next((b.defaults for b in self.backends if b.name == backend), {})
        return {**found, **own}

    def check(self, name: str, raw: Any, source: str = "parameter") -> Any:
        """``raw`` for setting ``name``, typed and checked; an unknown name is an error."""
        if raw is None:
            return None
        value = self.setting(name).check(raw, source)
        if name == "backend" and value not in self.backend_names():
            raise UnknownNameError(f"{self.name} backend", str(value), self.backend_names())
        return value

    # -- what it runs ---------------------------------------------------------------------
    def pipeline(self) -> Pipeline:
        module = importlib.import_module(self.pipeline_module)
        pipeline: Pipeline = module.PIPELINE
        registered = pipeline.backends.names()
        if sorted(registered) != sorted(self.backend_names()):
            raise ValueError(
                f"{self.name}: {self.pipeline_module} registers backends {registered}, but "
                f"its spec declares {self.backend_names()}"
            )
        return pipeline

    def exercises(self) -> list[Any]:
        if self.exercises_module is None:
            return []
        return list(importlib.import_module(self.exercises_module).EXERCISES)

    def notebook_path(self, directory: Path | None = None) -> Path:
        """The notebook: an absolute path as it is, a bare name in ``notebooks/``."""
        path = Path(self.notebook)
        if path.is_absolute():
            return path
        from mlops_helpers import paths

        return (directory or paths.notebooks_dir()) / path


def format_settings(spec: Scenario) -> str:
    """Every setting a scenario reads: name, rule, default and help; secrets marked.
    What ``mlops-workshop <scenario> settings`` prints."""
    rows = [("setting", "type", "default", "meaning")]
    for setting in spec.declared().values():
        default = "(secret)" if setting.secret else repr(setting.default)
        if setting.default is None and not setting.secret:
            default = "-"
        own = [
            f"{b.name}: {b.defaults[setting.name]!r}"
            for b in spec.backends
            if setting.name in b.defaults
        ]
        if own:  # a backend's own default: "ibm: 5.0"
            default = ", ".join(own) if default == "-" else f"{default}; {', '.join(own)}"
        rows.append((setting.name, setting.describe(), default, setting.help))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    lines.insert(1, "-" * len(lines[0]))
    env = ", ".join(f"{s.name.upper()}" for s in spec.declared().values() if s.secret)
    tail = "\nSet any of them as MLOPS_<NAME> or <NAME> in the environment or .env"
    return "\n".join(lines) + tail + (f"; secrets ({env}) only there." if env else ".")
