"""A room, not one user: four attendees sign in, each runs the first stages of a scenario
notebook (and its closing cleanup) in their own server at the same time, half the room on one
scenario and half on the other; no two share a port, a home or a run; the instructor's grid
shows what each attendee's run wrote. Stopping the room is test_room_stop's subject.

(Larger rooms, up to six attendees with two whole notebooks each at once, are
bench/bench_room.py's subject: minutes of CPU on two cores, measured there rather than
repeated in every test run. The whole notebooks run in tests/notebooks.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlops_helpers.progress import read_progress
from mlops_helpers.room.hub import Room
from mlops_helpers.room.remote import Attendee, AttendeeError, NotebookRun
from mlops_helpers.room.watch import RoomWatch
from tests.fixtures.room import INSTRUCTOR_CODE, WORKSHOP_CODE, own_password
from tests.room.first_stages import first_stages

pytestmark = [pytest.mark.room, pytest.mark.slow, pytest.mark.xdist_group("room")]

ATTENDEES = [f"att{i}" for i in range(1, 5)]
# half the room on one scenario, half on the other, so two scenarios' servers run side by side
SCENARIO_OF = {
    name: ("sagemaker_byo", "watson_openscale")[i % 2] for i, name in enumerate(ATTENDEES)
}
NOTEBOOK_OF = {
    "sagemaker_byo": "mlops-workshop/notebooks/02_sagemaker_byo.ipynb",
    "watson_openscale": "mlops-workshop/notebooks/03_watson_openscale.ipynb",
}
LAST_STAGE_OF = {"sagemaker_byo": "train_status", "watson_openscale": "space"}
# what the grid must show done: the stages through LAST_STAGE_OF, then the closing cell's
DONE_OF = {
    "sagemaker_byo": {"build", "train", "train_status", "teardown"},
    "watson_openscale": {"setup", "space", "cleanup"},
}


def instructor_view(room: Room) -> dict:
    teacher = Attendee(room.url, "teacher", INSTRUCTOR_CODE)
    teacher.sign_in()
    answer = teacher.http.get(f"{room.url}/services/room/api/progress", timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    page = teacher.http.get(f"{room.url}/services/room/", timeout=60)
    assert page.status_code == 200 and "Workshop room" in page.text
    return answer.json()


def first_stages_session(room: Room, name: str) -> NotebookRun:
    """Sign in, start the server, save the scenario notebook's first stages next to the
    attendee's copy of it (as JupyterLab saves), and run that."""
    attendee = Attendee(room.url, name, own_password(name), WORKSHOP_CODE)
    attendee.sign_in()
    attendee.start_server()
    scenario = SCENARIO_OF[name]
    whole = NOTEBOOK_OF[scenario]
    path = whole.replace(".ipynb", "-first-stages.ipynb")
    attendee.save_notebook(path, first_stages(attendee.notebook(whole), LAST_STAGE_OF[scenario]))
    return attendee.run_notebook(path)


def test_a_new_name_needs_the_workshop_code(room: Room) -> None:
    with pytest.raises(AttendeeError, match="could not sign in"):
        Attendee(room.url, "stranger", "not-the-code").sign_in()
    with pytest.raises(AttendeeError, match="could not sign in"):
        Attendee(room.url, "teacher", WORKSHOP_CODE).sign_in()  # instructors need their code


def test_four_attendees_run_a_notebook_each_at_once(room: Room) -> None:
    with RoomWatch(room.spec.room_dir) as watch, ThreadPoolExecutor(len(ATTENDEES)) as pool:
        runs = dict(
            zip(
                ATTENDEES, pool.map(lambda n: first_stages_session(room, n), ATTENDEES), strict=True
            )
        )
    failures = [f"{r.attendee} {r.path}: {r.error}" for r in runs.values() if not r.ok]
    assert not failures, failures
    assert all(r.cells >= 6 for r in runs.values())  # every code cell of the cut notebooks

    assert watch.samples > 0
    assert not watch.shared_ports(), f"ports used by more than one attendee: {watch.ports}"
    assert {n for names in watch.ports.values() for n in names} >= set(ATTENDEES)

    homes = Path(room.spec.room_dir) / "homes"
    for name in ATTENDEES:
        assert {p.name for p in (homes / name / "runs").iterdir()} == {
            f"{SCENARIO_OF[name]}-{name}"
        }
        assert (homes / name / "mlops-workshop" / ".git").is_dir()  # their own copy

    grid = instructor_view(room)
    assert set(ATTENDEES) <= set(grid["attendees"]) and "teacher" not in grid["attendees"]
    for name in ATTENDEES:
        scenario = SCENARIO_OF[name]
        cells = grid["rows"][name][scenario]
        recorded = read_progress(homes / name / "runs" / f"{scenario}-{name}")
        assert recorded, (name, scenario)
        for stage, cell in cells.items():  # the page shows what the attendee's run wrote
            expected = recorded.get(stage, {}).get("status", "not started")
            assert cell["status"] == expected, (name, scenario, stage, cell)
        assert {s for s, c in cells.items() if c["status"] == "done"} == DONE_OF[scenario]
        for other in set(NOTEBOOK_OF) - {scenario} | {"dvc_cml"}:  # not run: nothing shown
            assert {c["status"] for c in grid["rows"][name][other].values()} == {"not started"}


def test_attendees_cannot_open_the_instructor_page(room: Room) -> None:
    attendee = Attendee(room.url, "att1", own_password("att1"), WORKSHOP_CODE)
    attendee.sign_in()
    answer = attendee.http.get(f"{room.url}/services/room/api/progress", timeout=60)
    assert answer.status_code == 403
