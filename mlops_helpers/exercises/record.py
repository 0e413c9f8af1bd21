"""The check cell's verdicts, kept beside ``progress.json`` for the room page.

``<run_dir>/exercises.json`` holds ``{"exercises": {"1": {"done", "hint", "at", "done_at"}}}``:
the latest verdict of each exercise, and when it was first done (a later exercise may change
what an earlier check looks at; the room page still shows it as done). Nothing in the pipeline
reads this file, so a check can never change what a stage decides. Like ``progress.json`` it
lives in the attendee's own run folder, which is where the room page already reads.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_helpers.exercises.base import Verdict

EXERCISES_FILE = "exercises.json"


def read_exercises(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{number: {"done", "hint", "at", "done_at"}}`` as strings of numbers; empty when no
    check has run or the file is torn."""
    try:
        data = json.loads((Path(run_dir) / EXERCISES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    found = data.get("exercises") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, dict)}


def record_verdict(run_dir: Path, verdict: Verdict) -> None:
    """Keep ``verdict``; the first time an exercise is done stays recorded. Best effort, like
    ``progress.json``: a check never fails for want of a writable folder."""
    path = Path(run_dir) / EXERCISES_FILE
    known = read_exercises(run_dir)
    now = time.time()
    earlier = known.get(str(verdict.number), {})
    known[str(verdict.number)] = {
        "done": verdict.done,
        "hint": verdict.hint,
        "at": now,
        "done_at": earlier.get("done_at") or (now if verdict.done else None),
    }
    tmp = path.with_name(f".{EXERCISES_FILE}.{os.getpid()}.tmp")  # readers never see half
    try:
        tmp.write_text(json.dumps({"exercises": known}, indent=2))
        tmp.replace(path)
    except OSError:  # a folder nobody can write: the verdict was printed, the page misses it
        return
