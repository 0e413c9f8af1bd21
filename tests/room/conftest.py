from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_helpers.room.hub import Room, plan_room, start_room

WORKSHOP_CODE = "room-code-42"
INSTRUCTOR_CODE = "teach-me-42"


def own_password(name: str) -> str:
    """The password an attendee chooses when they claim their name."""
    return f"{name}-own-pass"


@pytest.fixture(scope="session")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """A real room: JupyterHub, configurable-http-proxy, the idle culler and the room page.

    Started once for the room's test files (test_room, test_room_browser, test_room_stop):
    they name one xdist group, so they share a worker and this room. test_room_stop stops
    it and runs last; stopping again here is harmless."""
    room_dir: Path = tmp_path_factory.mktemp("room")
    spec = plan_room(room_dir, instructors=["teacher"])
    started = start_room(spec, workshop_code=WORKSHOP_CODE, instructor_code=INSTRUCTOR_CODE)
    try:
        yield started
    finally:
        started.stop()
