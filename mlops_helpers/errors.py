"""One exception tree for the whole workshop.

Every error the helpers raise on purpose is a ``WorkshopError``, so the CLI and notebooks
can tell "the pipeline said no, and why" from a bug.
"""

from __future__ import annotations


class WorkshopError(Exception):
    """Base class of every error the workshop raises on purpose."""


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
