"""One exception tree for the whole workshop.

Every error the helpers raise on purpose is a ``WorkshopError``, so the CLI and notebooks
can tell "the pipeline said no, and why" from a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NextStep:
    """What to run next after an error: a stage and its settings. Each front end says it in
    its own words (``-p`` on the command line, keyword arguments in a notebook)."""

    why: str  # "roll the canary back"
    stage: str
    params: dict[str, Any] = field(default_factory=dict)

    def for_cli(self, scenario: str) -> str:
        options = "".join(f" -p {key} {value}" for key, value in self.params.items())
        return f"{self.why}: mlops-workshop {scenario} {self.stage}{options}"

    def for_notebook(self) -> str:
        options = "".join(f", {key}={value!r}" for key, value in self.params.items())
        return f'{self.why}: run("{self.stage}"{options})'


class WorkshopError(Exception):
    """Base class of every error the workshop raises on purpose; ``next_step`` (optional)
    says what to run next, which each front end adds in its own syntax."""

    next_step: NextStep | None = None

    def __init__(self, *args: Any, next_step: NextStep | None = None) -> None:
        super().__init__(*args)
        if next_step is not None:
            self.next_step = next_step


class ConfigError(WorkshopError):
    """A setting is missing or has a value that cannot be used."""


class MissingExtraError(WorkshopError, ImportError):
    """An optional dependency is not installed; the message names the install command."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"'{module}' is not installed. It comes with the '{extra}' extra: "
            f"pip install 'mlops-workshop[{extra}]'  (or: pip install -e '.[{extra}]' "
            f"in a clone)"
        )


class WaitTimeout(WorkshopError, TimeoutError):
    """A bounded wait ran out; names what it waited for, how long and the last status."""

    def __init__(self, what: str, waited: float, last_status: str) -> None:
        self.what = what
        self.waited = waited
        self.last_status = last_status
        super().__init__(
            f"timed out after {waited:.1f}s waiting for {what}; last status: {last_status}"
        )


class ServerStartError(WorkshopError):
    """A local server exited or never became healthy; carries the tail of its log."""


class StageError(WorkshopError):
    """A pipeline stage could not do its work."""


class CorruptFileError(StageError):
    """A run folder's record (state.json, resources.json) is not the JSON it should be."""


class GateFailed(StageError):
    """A gate refused to let the pipeline go on (failed training, smoke test, threshold)."""


class UnknownNameError(WorkshopError, KeyError):
    """A name (backend, scenario, stage) is not known; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {kind} '{name}'; known: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class CleanupError(WorkshopError):
    """One or more teardowns failed; every failure is listed."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        lines = "\n".join(f"  - {name}: {reason}" for name, reason in failures)
        super().__init__(f"{len(failures)} teardown(s) failed:\n{lines}")


class BackendUnavailable(WorkshopError):
    """A backend cannot run on this machine (no credentials, no docker, no kind)."""


def error_line(exc: BaseException) -> str:
    """The one line every front end shows for a failure: ``gate failed: ...`` for a gate,
    ``error: ...`` for anything else (with the type's name when it is not ours)."""
    if isinstance(exc, KeyboardInterrupt):
        return "error: interrupted"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] + (" " + "; ".join(lines[1:]) if lines[1:] else "") if lines else ""
    if isinstance(exc, GateFailed):
        return f"gate failed: {text}"
    if isinstance(exc, WorkshopError):
        return f"error: {text}"
    return f"error: {type(exc).__name__}: {text}"
