"""The room page tells the truth, against the real hub: each attendee's server state and last
activity beside their stages; a server killed mid-stage shows as stopped within seconds, its
running stage as interrupted, and the attendee under "Needs help"."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlops_helpers.progress import record_progress
from mlops_helpers.room.hub import Room
from mlops_helpers.room.remote import Attendee
from mlops_helpers.room.watch import room_processes_by_attendee
from mlops_helpers.waiting import wait_until
from tests.fixtures.room import INSTRUCTOR_CODE, WORKSHOP_CODE, own_password

pytestmark = [pytest.mark.room, pytest.mark.slow, pytest.mark.xdist_group("room")]

NAME = "kate"
# the hub checks servers every 3 s (jupyterhub_config.py): "within seconds" has this bound
SHOWN_WITHIN_S = 15


def page_data(teacher: Attendee, room: Room) -> dict[str, Any]:
    answer = teacher.http.get(f"{room.url}/services/room/api/progress", timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()


def test_a_killed_server_shows_as_stopped_and_its_stage_as_interrupted(room: Room) -> None:
    kate = Attendee(room.url, NAME, own_password(NAME), WORKSHOP_CODE)
    kate.sign_in()
    kate.start_server()
    run_dir = Path(room.spec.room_dir) / "homes" / NAME / "runs" / f"sagemaker_byo-{NAME}"
    # what her kernel records: a new run, build done, train under way
    record_progress(run_dir, "build", "running", new_run=True)
    record_progress(run_dir, "build", "done")
    record_progress(run_dir, "train", "running")
    teacher = Attendee(room.url, "teacher", INSTRUCTOR_CODE)
    teacher.sign_in()

    seen = page_data(teacher, room)
    assert seen["servers"][NAME]["state"] == "running"
    assert seen["servers"][NAME]["last_activity"]
    assert seen["servers"][NAME]["limits"] == room.spec.limits  # which limits hold, in words
    assert room.spec.limits
    cells = seen["rows"][NAME]["sagemaker_byo"]
    assert cells["build"]["status"] == "done" and cells["train"]["status"] == "running"
    assert cells["train"]["at"] > 0  # the page shows time in stage from it
    assert [h for h in seen["help"] if h["attendee"] == NAME] == []

    servers = [
        proc
        for name, proc in room_processes_by_attendee(room.spec.room_dir)
        if name == NAME and "jupyterhub-singleuser" in " ".join(proc.cmdline())
    ]
    assert len(servers) == 1, servers
    servers[0].send_signal(signal.SIGKILL)
    psutil.wait_procs(servers, timeout=10)

    after = wait_until(
        lambda: page_data(teacher, room),
        what=f"the room page to show {NAME}'s server as stopped",
        timeout=SHOWN_WITHIN_S,
        interval=0.5,
        until=lambda data: data["servers"][NAME]["state"] == "stopped",
        describe=lambda data: data["servers"][NAME]["state"],
        progress=False,
    )
    train = after["rows"][NAME]["sagemaker_byo"]["train"]
    assert train["status"] == "interrupted" and "stopped" in train["message"]
    assert [(h["stage"], h["why"]) for h in after["help"] if h["attendee"] == NAME] == [
        ("train", "interrupted")
    ]
