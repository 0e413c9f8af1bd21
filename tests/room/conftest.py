from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_helpers.room.accounts import remove_system_users, running_as_root
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
    # As root, each attendee becomes a system user; a prefix of its own per test room, so rooms
    # of other checkouts on this machine never share one.
    spec = plan_room(room_dir, instructors=["teacher"], user_prefix=test_user_prefix())
    started = start_room(spec, workshop_code=WORKSHOP_CODE, instructor_code=INSTRUCTOR_CODE)
    try:
        yield started
    finally:
        started.stop()
        if running_as_root():
            remove_system_users(spec.homes)


def test_user_prefix() -> str:
    return f"t{secrets.token_hex(2)}-"
