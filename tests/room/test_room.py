"""A room, not one user: four attendees sign in, each runs a scenario notebook in their own
server at the same time, the instructor sees them all, and stopping leaves nothing.

(Larger rooms, up to six attendees with two notebooks each at once, are bench/bench_room.py's
subject: minutes of CPU on two cores, measured there rather than repeated in every test run.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from mlops_helpers.progress import read_progress
from mlops_helpers.room.hub import Room
from mlops_helpers.room.remote import Attendee, AttendeeError, attendee_session
from mlops_helpers.room.watch import RoomWatch
from mlops_helpers.servers import port_is_free
from tests.room.conftest import INSTRUCTOR_CODE, WORKSHOP_CODE

pytestmark = [pytest.mark.room, pytest.mark.slow, pytest.mark.xdist_group("room")]

ATTENDEES = [f"att{i}" for i in range(1, 5)]
# half the room on one scenario, half on the other, so two scenarios' servers run side by side
SCENARIO_OF = {name: ("sagemaker_byo", "watson_openscale")[i % 2]
               for i, name in enumerate(ATTENDEES)}
NOTEBOOK_OF = {"sagemaker_byo": "mlops-workshop/notebooks/02_sagemaker_byo.ipynb",
               "watson_openscale": "mlops-workshop/notebooks/03_watson_openscale.ipynb"}


def instructor_view(room: Room) -> dict:
    teacher = Attendee(room.url, "teacher", INSTRUCTOR_CODE)
    teacher.sign_in()
    answer = teacher.http.get(f"{room.url}/services/room/api/progress", timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    page = teacher.http.get(f"{room.url}/services/room/", timeout=60)
    assert page.status_code == 200 and "Workshop room" in page.text
    return answer.json()


def test_a_new_name_needs_the_workshop_code(room: Room) -> None:
    with pytest.raises(AttendeeError, match="could not sign in"):
        Attendee(room.url, "stranger", "not-the-code").sign_in()
    with pytest.raises(AttendeeError, match="could not sign in"):
        Attendee(room.url, "teacher", WORKSHOP_CODE).sign_in()  # instructors need their code


def test_four_attendees_run_a_notebook_each_at_once(room: Room) -> None:
    def session(name: str) -> list:
        notebook = NOTEBOOK_OF[SCENARIO_OF[name]]
        return attendee_session(room.url, name, WORKSHOP_CODE, [notebook])

    with RoomWatch(room.spec.room_dir) as watch, ThreadPoolExecutor(len(ATTENDEES)) as pool:
        sessions = dict(zip(ATTENDEES, pool.map(session, ATTENDEES), strict=True))
    failures = [f"{r.attendee} {r.path}: {r.error}" for runs in sessions.values()
                for r in runs if not r.ok]
    assert not failures, failures
    assert all(r.cells > 5 for runs in sessions.values() for r in runs)

    assert watch.samples > 0
    assert not watch.shared_ports(), f"ports used by more than one attendee: {watch.ports}"
    assert {n for names in watch.ports.values() for n in names} >= set(ATTENDEES)

    homes = Path(room.spec.room_dir) / "homes"
    for name in ATTENDEES:
        runs = {p.name for p in (homes / name / "runs").iterdir()}
        assert runs == {f"{SCENARIO_OF[name]}-{name}"}, runs
        assert (homes / name / "mlops-workshop" / ".git").is_dir()  # their own copy

    grid = instructor_view(room)
    assert grid["attendees"] == sorted(ATTENDEES)
    for name in ATTENDEES:
        scenario = SCENARIO_OF[name]
        cells = grid["rows"][name][scenario]
        recorded = read_progress(homes / name / "runs" / f"{scenario}-{name}")
        assert recorded, (name, scenario)
        for stage, cell in cells.items():  # the page shows what the attendee's run wrote
            expected = recorded.get(stage, {}).get("status", "not started")
            assert cell["status"] == expected, (name, scenario, stage, cell)
        assert cells["cleanup"]["status"] == "done"
        assert sum(c["status"] == "done" for c in cells.values()) >= 4
        for other in set(NOTEBOOK_OF) - {scenario} | {"dvc_cml"}:  # not run: nothing shown
            assert {c["status"] for c in grid["rows"][name][other].values()} == {"not started"}


def test_attendees_cannot_open_the_instructor_page(room: Room) -> None:
    attendee = Attendee(room.url, "att1", WORKSHOP_CODE)
    attendee.sign_in()
    answer = attendee.http.get(f"{room.url}/services/room/api/progress", timeout=60)
    assert answer.status_code == 403


def test_stopping_the_room_leaves_nothing(room: Room) -> None:
    """Runs last in this module: stop the room with servers still up, then look."""
    assert any(room.api("GET", f"users/{n}").json()["servers"] for n in ATTENDEES)
    started = psutil.Process(room.process.pid).children(recursive=True)
    assert len(started) >= 3 + len(ATTENDEES)  # proxy, culler, room page, servers, kernels
    room.stop()
    assert room.room_processes() == []
    survivors = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], [" ".join(p.cmdline()) for p in survivors]
    spec = room.spec
    for port in (spec.hub_port, spec.hub_api_port, spec.proxy_api_port, spec.service_port):
        assert port_is_free(port)
    with pytest.raises(requests.ConnectionError):
        requests.get(room.url, timeout=5)
