"""Where each stage of a run stands, for people watching from outside the run.

Every stage records ``running`` when it starts and ``done`` or ``failed`` (with its message,
secrets masked) when it ends, in ``<run_dir>/progress.json``; a stage whose process ended
mid-stage (killed, interrupted) is ``interrupted``, not ``running`` for ever. The
instructor's room page reads these files from every attendee's run directories; nothing in
the pipeline reads them back, so they can never change what a stage decides.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_helpers.config import Secret, mask_text

PROGRESS_FILE = "progress.json"
STATUSES = ("running", "done", "failed", "interrupted")


def read_progress(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{stage: {"status", "message", "at"}}``; empty when nothing ran or the file is torn."""
    try:
        data = json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return _settled(data) if isinstance(data, dict) else {}


def _settled(data: dict[str, Any]) -> dict[str, Any]:
    """A ``running`` stage whose process is gone was interrupted (killed mid-stage)."""
    from mlops_helpers.resources import process_alive

    for entry in data.values():
        if not isinstance(entry, dict) or entry.get("status") != "running":
            continue
        pid = entry.get("pid")
        if isinstance(pid, int) and not process_alive(pid):
            entry.update(status="interrupted", message=f"its process (pid {pid}) ended mid-stage")
    return data


def record_progress(run_dir: Path, stage: str, status: str, message: str = "") -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown stage status {status!r}; expected one of {STATUSES}")
    path = Path(run_dir) / PROGRESS_FILE
    data = read_progress(run_dir)
    data[stage] = {"status": status, "message": message[:500], "at": time.time()}
    data[stage]["pid"] = os.getpid()
    tmp = path.with_name(f".{PROGRESS_FILE}.{os.getpid()}.tmp")  # readers never see half a file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)
    except OSError:  # a folder nobody can write: progress is for watchers, the stage goes on
        return


@contextmanager
def stage_progress(run_dir: Path, stage: str, secrets: Iterable[Secret] = ()) -> Iterator[None]:
    """Record the stage as running, then done, or failed with its (masked) message."""
    record_progress(run_dir, stage, "running")
    try:
        yield
    except BaseException as exc:
        message = mask_text(f"{type(exc).__name__}: {exc}", list(secrets))
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        record_progress(run_dir, stage, status, message)
        raise
    record_progress(run_dir, stage, "done")
