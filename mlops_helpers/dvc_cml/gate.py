"""Gate results that hold across processes, tied to the exact workspace content they judged.

``lock_check`` and ``pushed_check`` record pass *or* fail with a fingerprint of the
workspace (every git-tracked file as it is on disk, plus ``dvc.lock``); ``push`` and
``commit_lock`` run in other processes (Jenkins ``sh`` steps) and promote only what a gate
passed. Editing params, tampering with or deleting the lock after the gate changes the
fingerprint, so the promoting stage refuses.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlops_helpers.dvc_cml.shell import Shell
from mlops_helpers.errors import GateFailed
from mlops_helpers.pipeline import StateStore

LOCK = "dvc.lock"


def lock_digest(sh: Shell) -> str:
    """sha256 of dvc.lock, or 'missing'; shown to people as the lock's short id."""
    path = sh.cwd / LOCK
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def fingerprint(sh: Shell) -> str:
    """sha256 over the tracked files' content in the working tree and dvc.lock."""
    names = set(filter(None, sh.git("ls-files", "-z").split("\0"))) | {LOCK}
    digest = hashlib.sha256()
    for name in sorted(names):
        path = sh.cwd / name
        content = path.read_bytes() if path.is_file() else b"<missing>"
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def record(state: StateStore, gate: str, sh: Shell, passed: bool, reason: str = "") -> None:
    gates: dict[str, Any] = state.get("gates", {})
    gates[gate] = {
        "fingerprint": fingerprint(sh),
        "lock": lock_digest(sh),
        "passed": passed,
        "reason": reason,
    }
    state.update(gates=gates)


def require_passed(state: StateStore, gates: tuple[str, ...], sh: Shell, stage: str) -> None:
    """Refuse ``stage`` unless every gate passed for the workspace exactly as it is now."""
    now, lock = fingerprint(sh), lock_digest(sh)[:12]
    recorded: dict[str, Any] = state.get("gates", {})
    for gate in gates:
        found = recorded.get(gate)
        if found is None:
            raise GateFailed(
                f"{stage} refused: {gate} has not run for this workspace; run "
                f"it first (dvc.lock {lock})"
            )
        if found["fingerprint"] != now:
            then = found["lock"][:12]
            what = (
                f"dvc.lock {lock} is the same, a tracked file such as params.yaml is not"
                if then == lock
                else f"dvc.lock then {then}, now {lock}"
            )
            raise GateFailed(
                f"{stage} refused: the workspace changed since {gate} judged it "
                f"({what}); run {gate} again"
            )
        if not found["passed"]:
            raise GateFailed(
                f"{stage} refused: {gate} failed for this dvc.lock ({lock}): {found['reason']}"
            )
