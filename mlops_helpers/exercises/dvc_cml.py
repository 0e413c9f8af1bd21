"""dvc_cml: a parameter changed without reproducing, and the report's delta for it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from mlops_helpers.exercises.base import Exercise, RunView

PARAMS = "params.yaml"


def _workspace(run: RunView) -> Path | None:
    found = run.result("checkout").get("workspace")
    return Path(found) if found and Path(found).is_dir() else None


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _params_changed(workspace: Path) -> dict[str, Any]:
    """The parameters whose value in the working tree differs from the committed head
    (read with ``git show``; nothing is changed)."""
    import yaml

    committed = subprocess.run(
        ["git", "-C", str(workspace), "show", f"HEAD:{PARAMS}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if committed.returncode != 0:
        return {}
    before = _flat(yaml.safe_load(committed.stdout) or {})
    now = _flat(yaml.safe_load((workspace / PARAMS).read_text()) or {})
    return {k: v for k, v in now.items() if before.get(k) != v}


def lock_refuses(run: RunView) -> str | None:
    workspace = _workspace(run)
    if workspace is None:
        return "there is no workspace yet: run the checkout cell above"
    if not _params_changed(workspace):
        return f"change a parameter in {workspace / PARAMS} first (do not reproduce yet)"
    gate = run.record("gates").get("lock_check") or {}
    if gate.get("passed") is not False or "not up to date" not in str(gate.get("reason")):
        return "run lock_check on your change: it has not refused a stale dvc.lock yet"
    return None


def report_delta(run: RunView) -> str | None:
    workspace = _workspace(run)
    if workspace is None:
        return "there is no workspace yet: run the checkout cell above"
    changed = _params_changed(workspace)
    if not changed:
        return f"change a parameter in {workspace / PARAMS} first (exercise 1)"
    compared = run.run_dir / "report" / "compare.json"
    report = Path(run.result("report").get("markdown") or run.run_dir / "report" / "missing")
    if not compared.is_file():
        return "run reproduce, then compare and report"
    # dvc params diff: {file: {"train.C": {"old", "new", "diff"}}}
    files = json.loads(compared.read_text()).get("params") or {}
    shown = {
        name: entry.get("new")
        for entries in files.values()
        if isinstance(entries, dict)
        for name, entry in entries.items()
        if isinstance(entry, dict)
    }
    missing = [k for k, v in changed.items() if shown.get(k) != v]
    if missing:
        return f"the comparison does not show your {', '.join(missing)} yet: run compare"
    if run.status("reproduce") != "done" or run.at("reproduce") > run.at("compare"):
        return "reproduce your change before compare, so the metrics are its metrics"
    if not report.is_file() or report.stat().st_mtime < compared.stat().st_mtime:
        return "run report to turn the comparison into the pull request's comment"
    return None


EXERCISES = [
    Exercise(
        "dvc_cml",
        1,
        "A parameter changed, the lock not",
        "Change a value in the workspace's params.yaml (train.C, say) without reproducing, "
        "then run lock_check: the gate refuses a dvc.lock that no longer matches.",
        8,
        lock_refuses,
    ),
    Exercise(
        "dvc_cml",
        2,
        "Read the delta in the report",
        "Reproduce your change, then compare and report: the report shows your parameter's "
        "old and new value and what it did to the metrics against the target branch.",
        10,
        report_delta,
    ),
]
