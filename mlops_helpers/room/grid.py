"""The room at a glance: every attendee's stages, read from their run directories, beside
their server's state as the hub reports it.

Each scenario shows its current run only (``progress.json`` holds one run; the first stage
starts a new one). The view also says who needs help: a failed stage, a stage running for
longer than ``stuck_after_s`` ("stuck"), and a stage still marked running while its server is
not ("interrupted": the server stopped or was killed mid-stage). Beside each scenario's
stages: which of its exercises the attendee's check cells found done (``exercises.json``,
written by the check beside ``progress.json``, read from the same run folder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_helpers.exercises.catalog import all_exercises
from mlops_helpers.exercises.record import read_exercises
from mlops_helpers.progress import read_progress, read_run
from mlops_helpers.scenarios import all_scenarios

NOT_STARTED = "not started"
INTERRUPTED = "interrupted"
STUCK_AFTER_S = 600.0  # a stage of these scenarios takes seconds; ten minutes is not normal
# The hub's word for a server, from its REST API: running, starting, stopping, stopped.
SERVER_RUNNING = "running"


@dataclass(frozen=True)
class Cell:
    status: str  # done, running, failed, not started, interrupted (or a newer status)
    message: str = ""
    at: float = 0.0  # when the status was recorded (for running: when the stage started)


def scenario_stages() -> dict[str, list[str]]:
    """Every scenario's stages in pipeline order (the columns of the room page)."""
    return {name: spec.pipeline().stage_names() for name, spec in all_scenarios().items()}


def scenario_exercises() -> dict[str, list[dict[str, Any]]]:
    """Every scenario's exercises (number and title), in notebook order."""
    return {
        scenario: [{"number": e.number, "title": e.title} for e in found]
        for scenario, found in all_exercises().items()
    }


def attendee_exercises(
    home: Path, attendee: str, exercises: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{scenario: {number: {"done", "hint"}}}`` as the attendee's check cells recorded
    them; an exercise done once stays done (a later exercise may move the run on)."""
    row: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario, listed in exercises.items():
        recorded = read_exercises(_run_dir(home, scenario, attendee))
        row[scenario] = {}
        for item in listed:
            found = recorded.get(str(item["number"]), {})
            row[scenario][str(item["number"])] = {
                "done": bool(found.get("done_at")),
                "hint": "" if found.get("done_at") else str(found.get("hint") or ""),
            }
    return row


def _run_dir(home: Path, scenario: str, attendee: str) -> Path:
    return home / "runs" / f"{scenario}-{attendee}"


def attendee_cells(
    home: Path, attendee: str, stages: dict[str, list[str]]
) -> dict[str, dict[str, Cell]]:
    """One attendee's row: ``{scenario: {stage: Cell}}`` from ``<home>/runs/<scenario>-<name>``."""
    row: dict[str, dict[str, Cell]] = {}
    for scenario, names in stages.items():
        progress = read_progress(_run_dir(home, scenario, attendee))
        row[scenario] = {
            stage: Cell(
                str(progress[stage].get("status", NOT_STARTED)),
                str(progress[stage].get("message", "")),
                float(progress[stage].get("at") or 0.0),
            )
            if isinstance(progress.get(stage), dict)
            else Cell(NOT_STARTED)
            for stage in names
        }
    return row


def room_grid(
    homes: Path,
    stages: dict[str, list[str]] | None = None,
    names: list[str] | None = None,
    exercises: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The whole room as JSON-ready data: scenarios with their stages, then one row a person
    (everyone with a home, plus ``names``), each scenario's current run, and the exercises
    each person has done."""
    stages = stages or scenario_stages()
    if exercises is None:
        exercises = {s: found for s, found in scenario_exercises().items() if s in stages}
    attendees = sorted(p.name for p in homes.iterdir() if p.is_dir()) if homes.is_dir() else []
    attendees = sorted(set(attendees) | set(names or []))
    rows = {
        name: {
            scenario: {stage: asdict(cell) for stage, cell in cells.items()}
            for scenario, cells in attendee_cells(homes / name, name, stages).items()
        }
        for name in attendees
    }
    runs = {
        name: {scenario: read_run(_run_dir(homes / name, scenario, name)) for scenario in stages}
        for name in attendees
    }
    done = {name: attendee_exercises(homes / name, name, exercises) for name in attendees}
    return {
        "scenarios": stages,
        "attendees": attendees,
        "rows": rows,
        "runs": runs,
        "exercises": exercises,
        "exercises_done": done,
    }


def room_view(
    grid: dict[str, Any],
    servers: dict[str, dict[str, Any]] | None,
    now: float,
    stuck_after_s: float = STUCK_AFTER_S,
) -> dict[str, Any]:
    """The grid with each attendee's server and who needs help. ``servers`` is the hub's
    word per attendee (``{"state", "last_activity", ...}``), or None when the hub did not
    answer: then nothing is marked interrupted, and every server shows as unknown."""
    view = {**grid, "servers": {}, "help": [], "now": now, "stuck_after_s": stuck_after_s}
    for name in grid["attendees"]:
        server = (servers or {}).get(name) or {"state": "stopped" if servers is not None else ""}
        server = {**server, "state": server.get("state") or "unknown"}
        view["servers"][name] = server
        down = servers is not None and server["state"] != SERVER_RUNNING
        for scenario, cells in grid["rows"][name].items():
            for stage, cell in cells.items():
                why = ""
                if cell["status"] == "running" and down:
                    cell["status"] = INTERRUPTED
                    cell["message"] = f"the server is {server['state']}: the stage did not finish"
                if cell["status"] == INTERRUPTED:
                    why = INTERRUPTED
                elif cell["status"] == "failed":
                    why = "failed"
                elif cell["status"] == "running" and now - cell["at"] > stuck_after_s:
                    cell["stuck"] = True
                    why = "stuck"
                    cell["message"] = f"running for {int((now - cell['at']) // 60)} min"
                if why:
                    view["help"].append(
                        {
                            "attendee": name,
                            "scenario": scenario,
                            "stage": stage,
                            "why": why,
                            "message": cell["message"],
                        }
                    )
    return view
