"""Where each stage of a run stands, for people watching from outside the run.

Every stage records ``running`` when it starts and ``done`` or ``failed`` (with its message,
secrets masked) when it ends, in ``<run_dir>/progress.json``. The instructor's room page reads
these files from every attendee's run directories; nothing in the pipeline reads them back,
so they can never change what a stage decides.
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
STATUSES = ("running", "done", "failed")


def read_progress(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{stage: {"status", "message", "at"}}``; empty when nothing ran or the file is torn."""
    try:
        data = json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_progress(run_dir: Path, stage: str, status: str, message: str = "") -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown stage status {status!r}; expected one of {STATUSES}")
    path = Path(run_dir) / PROGRESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = read_progress(run_dir)
    data[stage] = {"status": status, "message": message[:500], "at": time.time()}
    tmp = path.with_name(f".{PROGRESS_FILE}.{os.getpid()}.tmp")  # readers never see half a file
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


@contextmanager
def stage_progress(run_dir: Path, stage: str, secrets: Iterable[Secret] = ()) -> Iterator[None]:
    """Record the stage as running, then done, or failed with its (masked) message."""
    record_progress(run_dir, stage, "running")
    try:
        yield
    except BaseException as exc:
        message = mask_text(f"{type(exc).__name__}: {exc}", list(secrets))
        record_progress(run_dir, stage, "failed", message)
        raise
    record_progress(run_dir, stage, "done")
