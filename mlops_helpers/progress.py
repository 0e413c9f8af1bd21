"""Where each stage of a run stands, for people watching from outside the run.

Every stage records ``running`` when it starts and ``done`` or ``failed`` (with its message,
secrets masked) when it ends, in ``<run_dir>/progress.json``; a stage whose process ended
mid-stage (killed, interrupted) reads as ``interrupted``, not ``running`` for ever. The
instructor's room page reads these files from every attendee's run directories; nothing in
the pipeline reads them back, so they can never change what a stage decides.

The file holds the current run only: ``{"run": {"id", "started"}, "stages": {stage: {"status",
"message", "at", "pid", "host"}}}``. Starting the scenario's first stage starts a new run (a
new id) and forgets the previous run's stages, so the page never shows a stage done in an
earlier run as done in this one. A status is a plain string (see ``STATUSES``); readers show
one they do not know as it is.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops_helpers.config import Secret, mask_text

PROGRESS_FILE = "progress.json"
STATUSES = ("running", "done", "failed", "interrupted")


def _read(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        return {}  # torn, or written before runs had ids: no current run to show
    return _settled(data)


def _settled(data: dict[str, Any]) -> dict[str, Any]:
    """A ``running`` stage whose process is gone was interrupted (killed mid-stage). Only
    judged on the host that ran it: a pid means nothing in another machine or pod."""
    from mlops_helpers.resources import process_alive

    here = socket.gethostname()
    for entry in data["stages"].values():
        if not isinstance(entry, dict) or entry.get("status") != "running":
            continue
        pid = entry.get("pid")
        if entry.get("host") == here and isinstance(pid, int) and not process_alive(pid):
            entry.update(status="interrupted", message=f"its process (pid {pid}) ended mid-stage")
    return data


def read_progress(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The current run's ``{stage: {"status", "message", "at"}}``; empty when nothing ran or
    the file is torn."""
    return _read(run_dir).get("stages", {})


def read_run(run_dir: Path) -> dict[str, Any]:
    """The current run's ``{"id", "started"}``; empty when nothing ran."""
    run = _read(run_dir).get("run")
    return run if isinstance(run, dict) else {}


def record_progress(
    run_dir: Path, stage: str, status: str, message: str = "", *, new_run: bool = False
) -> None:
    """Record ``stage``'s status in the current run; ``new_run`` starts a new run first.
    Best effort: in a folder nobody can write, the stage goes on unrecorded."""
    if status not in STATUSES:
        raise ValueError(f"unknown stage status {status!r}; expected one of {STATUSES}")
    path = Path(run_dir) / PROGRESS_FILE
    now = time.time()
    data = {} if new_run else _read(run_dir)
    if not data:
        data = {"run": {"id": uuid.uuid4().hex[:12], "started": now}, "stages": {}}
    data["stages"][stage] = {
        "status": status,
        "message": message[:500],
        "at": now,
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    tmp = path.with_name(f".{PROGRESS_FILE}.{os.getpid()}.tmp")  # readers never see half a file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)
    except OSError:  # a folder nobody can write: progress is for watchers, the stage goes on
        return


@contextmanager
def stage_progress(
    run_dir: Path, stage: str, secrets: Iterable[Secret] = (), *, new_run: bool = False
) -> Iterator[None]:
    """Record the stage as running (in a new run when ``new_run``), then done, failed with its
    (masked) message, or interrupted (Stop, Ctrl-C)."""
    record_progress(run_dir, stage, "running", new_run=new_run)
    try:
        yield
    except BaseException as exc:
        message = mask_text(f"{type(exc).__name__}: {exc}", list(secrets))
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        record_progress(run_dir, stage, status, message)
        raise
    record_progress(run_dir, stage, "done")
