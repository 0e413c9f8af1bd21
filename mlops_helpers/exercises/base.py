"""What an exercise is, what a check answers, and the read-only view of a run it looks at."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_helpers.progress import read_progress


@dataclass(frozen=True)
class Verdict:
    number: int
    done: bool
    hint: str = ""  # what is still missing, in one sentence (empty when done)

    def line(self) -> str:
        if self.done:
            return f"Exercise {self.number}: done"
        return f"Exercise {self.number}: not yet: {self.hint}"


class RunView:
    """A run directory, read only: the stages' shared state and where each stage stands.
    Every reader answers something empty for a file that is missing or torn."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.run_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> Any:
        return self.state().get(key)

    def record(self, key: str) -> dict[str, Any]:
        """A dict the stages keep under ``key`` in the state (``{}`` when absent)."""
        value = self.get(key)
        return value if isinstance(value, dict) else {}

    def result(self, stage: str) -> dict[str, Any]:
        """What ``stage`` returned when it last succeeded (``{}`` when it has not)."""
        value = self.record("results").get(stage)
        return value if isinstance(value, dict) else {}

    def status(self, stage: str) -> str:
        """``done``, ``failed``, ``running``... in the current run, or ``""``."""
        return str(read_progress(self.run_dir).get(stage, {}).get("status", ""))

    def message(self, stage: str) -> str:
        return str(read_progress(self.run_dir).get(stage, {}).get("message", ""))

    def at(self, stage: str) -> float:
        return float(read_progress(self.run_dir).get(stage, {}).get("at") or 0.0)

    def refused(self, stage: str, words: str) -> bool:
        """``stage`` last failed with a message that says ``words``."""
        return self.status(stage) == "failed" and words in self.message(stage)


Check = Callable[[RunView], str | None]  # None: done; else what is still missing


@dataclass(frozen=True)
class Exercise:
    scenario: str
    number: int
    title: str
    task: str  # what the learner does, in one or two sentences
    minutes: int  # a learner's pace: reading, changing, running, looking
    check: Check
