"""Stopping the room leaves nothing: no process, no port, no answer.

Runs after the other room tests (same xdist group; marked ``last_in_group``), on the room
they shared, with their attendees' servers still up."""

from __future__ import annotations

import psutil
import pytest
import requests

from mlops_helpers.room.hub import Room
from mlops_helpers.room.remote import Attendee
from mlops_helpers.servers import port_is_free
from tests.fixtures.room import WORKSHOP_CODE, own_password

pytestmark = [pytest.mark.room, pytest.mark.slow, pytest.mark.xdist_group("room")]


@pytest.mark.last_in_group
def test_stopping_the_room_leaves_nothing(room: Room) -> None:
    def running() -> list[str]:
        return [user["name"] for user in room.api("GET", "users").json() if user["servers"]]

    if not running():  # this file alone: start one server, so there is one to stop
        attendee = Attendee(room.url, "lastone", own_password("lastone"), WORKSHOP_CODE)
        attendee.sign_in()
        attendee.start_server()
    servers = running()
    started = psutil.Process(room.process.pid).children(recursive=True)
    assert len(started) >= 3 + len(servers)  # proxy, culler, room page, every server
    room.stop()
    assert room.room_processes() == []
    survivors = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], [" ".join(p.cmdline()) for p in survivors]
    spec = room.spec
    for port in (spec.hub_port, spec.hub_api_port, spec.proxy_api_port, spec.service_port):
        assert port_is_free(port)
    with pytest.raises(requests.ConnectionError):
        requests.get(room.url, timeout=5)
