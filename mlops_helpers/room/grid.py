"""The room at a glance: every attendee's stages, read from their run directories."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_helpers.progress import read_progress
from mlops_helpers.scenarios import available_scenarios, load_pipeline

NOT_STARTED = "not started"


@dataclass(frozen=True)
class Cell:
    status: str  # done, running, failed, not started
    message: str = ""


def scenario_stages() -> dict[str, list[str]]:
    """Every scenario's stages in pipeline order (the columns of the room page)."""
    return {name: load_pipeline(name).stage_names() for name in available_scenarios()}


def attendee_cells(
    home: Path, attendee: str, stages: dict[str, list[str]]
) -> dict[str, dict[str, Cell]]:
    """One attendee's row: ``{scenario: {stage: Cell}}`` from ``<home>/runs/<scenario>-<name>``."""
    row: dict[str, dict[str, Cell]] = {}
    for scenario, names in stages.items():
        progress = read_progress(home / "runs" / f"{scenario}-{attendee}")
        row[scenario] = {
            stage: Cell(
                str(progress[stage].get("status", NOT_STARTED)),
                str(progress[stage].get("message", "")),
            )
            if isinstance(progress.get(stage), dict)
            else Cell(NOT_STARTED)
            for stage in names
        }
    return row


def room_grid(homes: Path, stages: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The whole room as JSON-ready data: scenarios with their stages, then one row a person."""
    stages = stages or scenario_stages()
    attendees = sorted(p.name for p in homes.iterdir() if p.is_dir()) if homes.is_dir() else []
    rows = {
        name: {
            scenario: {stage: asdict(cell) for stage, cell in cells.items()}
            for scenario, cells in attendee_cells(homes / name, name, stages).items()
        }
        for name in attendees
    }
    return {"scenarios": stages, "attendees": attendees, "rows": rows}
