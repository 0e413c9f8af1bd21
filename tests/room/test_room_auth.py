"""The room's authenticator on its own: attempt limits per address, and hashing that leaves
the hub's event loop free. (Claiming a name, changing a password, the limit per name and the
instructor's reset run against a real hub in test_room_names.py.)

The authenticator is JupyterHub's own class, with its real bcrypt and dbm store; the only
stand-in is the request handler, of which ``authenticate`` reads the client's address and on
which it leaves its message for the login page."""

from __future__ import annotations

import asyncio
import dbm
from pathlib import Path
from types import SimpleNamespace

import bcrypt
import pytest

from mlops_helpers.room.authenticator import WorkshopAuthenticator

pytestmark = pytest.mark.room

CODE = "room-code-42"


def handler(address: str) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(remote_ip=address), custom_login_error="")


@pytest.fixture
def auth(tmp_path: Path) -> WorkshopAuthenticator:
    return WorkshopAuthenticator(
        workshop_code=CODE,
        instructor_code="teach-me-42",
        instructors=["teacher"],
        dbm_path=str(tmp_path / "passwords.dbm"),
        min_password_length=6,
        failures_per_name=3,
        failures_per_address=5,
    )


def claim(auth: WorkshopAuthenticator, name: str, password: str, address: str) -> str | None:
    data = {"username": name, "password": CODE}
    data |= {"new_password": password, "new_password_again": password}
    return asyncio.run(auth.authenticate(handler(address), data))


def sign_in(auth: WorkshopAuthenticator, name: str, password: str, address: str) -> str | None:
    return asyncio.run(
        auth.authenticate(handler(address), {"username": name, "password": password})
    )


def test_failures_from_one_address_lock_that_address_out(auth: WorkshopAuthenticator) -> None:
    assert claim(auth, "ana", "ana-own-pass", "10.0.0.9") == "ana"
    for name in ("bo", "cy", "dan", "eve", "fay"):  # a guesser tries names, one guess each
        assert sign_in(auth, name, "guess-123", "10.0.0.66") is None
    assert sign_in(auth, "ana", "ana-own-pass", "10.0.0.66") is None  # even the right password
    assert "Too many failed attempts" in handler_message(auth, "ana", "10.0.0.66")
    assert sign_in(auth, "ana", "ana-own-pass", "10.0.0.9") == "ana"  # her own address: fine


def handler_message(auth: WorkshopAuthenticator, name: str, address: str) -> str:
    seen = handler(address)
    asyncio.run(auth.authenticate(seen, {"username": name, "password": "whatever1"}))
    return seen.custom_login_error


def test_hashing_runs_off_the_event_loop(auth: WorkshopAuthenticator) -> None:
    """While bcrypt checks a password (~0.3 s of CPU), the loop keeps serving: a task that
    yields every few milliseconds keeps running."""
    with dbm.open(auth.dbm_path, "c") as db:  # ana's password, as claiming her name stored it
        db[b"ana"] = bcrypt.hashpw(b"ana-own-pass", bcrypt.gensalt())

    async def signing_in_while_ticking() -> tuple[str | None, int]:
        ticks = 0
        done = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.002)
                ticks += 1

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)  # let it start
        ticks = 0
        name = await auth.authenticate(
            handler("10.0.0.9"), {"username": "ana", "password": "ana-own-pass"}
        )
        during = ticks
        done.set()
        await ticker
        return name, during

    name, ticks = asyncio.run(signing_in_while_ticking())
    assert name == "ana"
    assert ticks >= 3, f"the event loop ran {ticks} times while the password was checked"
