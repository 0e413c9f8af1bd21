"""Names that stay theirs, against the real hub: the workshop code opens a new name and the
attendee chooses its password; the code is never a password; changing a password needs the
current one; failed attempts per name are limited; the instructor resets an attendee from
the room page. (Attempts per address and hashing off the event loop: test_room_auth.py.)"""

from __future__ import annotations

import pytest
import requests

from mlops_helpers.room.hub import Room
from mlops_helpers.room.remote import Attendee, AttendeeError
from tests.fixtures.room import INSTRUCTOR_CODE, WORKSHOP_CODE, own_password

pytestmark = [pytest.mark.room, pytest.mark.slow, pytest.mark.xdist_group("room")]


def login_form(room: Room) -> requests.Session:
    http = requests.Session()
    http.get(f"{room.url}/hub/login", timeout=30)
    return http


def post_login(room: Room, http: requests.Session, **fields: str) -> requests.Response:
    return http.post(
        f"{room.url}/hub/login?next=",
        data={"_xsrf": http.cookies.get("_xsrf", ""), **fields},
        allow_redirects=False,
        timeout=60,
    )


def can_sign_in(room: Room, name: str, password: str) -> bool:
    try:
        Attendee(room.url, name, password).sign_in()
    except AttendeeError:
        return False
    return True


def test_a_new_name_is_claimed_with_the_code_and_a_password_of_ones_own(room: Room) -> None:
    http = login_form(room)
    asked = post_login(room, http, username="dave", password=WORKSHOP_CODE)
    assert asked.status_code == 200 and "Choose your password" in asked.text
    for new, again, why in [
        (WORKSHOP_CODE, WORKSHOP_CODE, "not the workshop code"),
        ("dave-pass-1", "dave-pass-2", "The two passwords differ"),
        ("short", "short", "at least 6 characters"),
    ]:
        answer = post_login(
            room,
            http,
            username="dave",
            password=WORKSHOP_CODE,
            new_password=new,
            new_password_again=again,
        )
        assert answer.status_code == 200 and why in answer.text, (new, answer.text[-2000:])
    claimed = post_login(
        room,
        http,
        username="dave",
        password=WORKSHOP_CODE,
        new_password=own_password("dave"),
        new_password_again=own_password("dave"),
    )
    assert claimed.status_code == 302
    assert can_sign_in(room, "dave", own_password("dave"))


def test_the_workshop_code_never_opens_a_claimed_name(room: Room) -> None:
    Attendee(room.url, "erin", own_password("erin"), WORKSHOP_CODE).sign_in()  # claims it
    assert not can_sign_in(room, "erin", WORKSHOP_CODE)
    http = login_form(room)
    stranger = post_login(
        room,
        http,
        username="erin",
        password=WORKSHOP_CODE,
        new_password="taken-over-1",
        new_password_again="taken-over-1",
    )
    assert stranger.status_code == 403
    assert not can_sign_in(room, "erin", "taken-over-1")
    assert can_sign_in(room, "erin", own_password("erin"))


def test_changing_a_password_needs_the_current_one(room: Room) -> None:
    gus = Attendee(room.url, "gus", own_password("gus"), WORKSHOP_CODE)
    gus.sign_in()  # a stranger at gus's unlocked laptop, say
    page = f"{room.url}/hub/auth/change-password"
    assert gus.http.get(page, timeout=30).status_code == 200

    def change(**fields: str) -> requests.Response:
        return gus.http.post(
            page, data={"_xsrf": gus.http.cookies.get("_xsrf", ""), **fields}, timeout=60
        )

    refused = change(
        password="stolen-pass-1",  # the only field the old form had
        current_password="a-wrong-guess",
        new_password="stolen-pass-1",
        new_password_again="stolen-pass-1",
    )
    assert refused.status_code == 403 and "current password is wrong" in refused.text
    assert not can_sign_in(room, "gus", "stolen-pass-1")
    changed = change(
        current_password=own_password("gus"),
        new_password="gus-new-pass",
        new_password_again="gus-new-pass",
    )
    assert changed.status_code == 200 and "has been changed" in changed.text
    assert can_sign_in(room, "gus", "gus-new-pass")
    assert not can_sign_in(room, "gus", own_password("gus"))


def test_failed_attempts_on_a_name_are_limited(room: Room) -> None:
    Attendee(room.url, "hana", own_password("hana"), WORKSHOP_CODE).sign_in()
    for guess in range(5):
        assert not can_sign_in(room, "hana", f"guess-{guess}-x")
    http = login_form(room)
    answer = post_login(room, http, username="hana", password=own_password("hana"))
    assert answer.status_code == 403 and "Too many failed attempts" in answer.text


def test_the_instructor_resets_an_attendee_from_the_room_page(room: Room) -> None:
    Attendee(room.url, "ivan", own_password("ivan"), WORKSHOP_CODE).sign_in()
    teacher = Attendee(room.url, "teacher", INSTRUCTOR_CODE)
    teacher.sign_in()
    page = teacher.http.get(f"{room.url}/services/room/", timeout=60)
    assert page.status_code == 200 and "reset password" in page.text
    xsrf = page.text.split('const xsrf = "', 1)[1].split('"', 1)[0]
    reset = f"{room.url}/services/room/api/reset/"

    no_xsrf = teacher.http.post(reset + "ivan", timeout=60)
    assert no_xsrf.status_code == 403 and can_sign_in(room, "ivan", own_password("ivan"))
    attendee = Attendee(room.url, "judy", own_password("judy"), WORKSHOP_CODE)
    attendee.sign_in()
    assert attendee.http.post(reset + "ivan", timeout=60).status_code == 403
    headers = {"X-XSRFToken": xsrf}
    assert teacher.http.post(reset + "teacher", headers=headers, timeout=60).status_code == 400
    assert teacher.http.post(reset + "nobody", headers=headers, timeout=60).status_code == 404

    done = teacher.http.post(reset + "ivan", headers=headers, timeout=60)
    assert done.status_code == 200, done.text
    assert not can_sign_in(room, "ivan", own_password("ivan"))
    Attendee(room.url, "ivan", "ivan-again-1", WORKSHOP_CODE).sign_in()  # chooses a new one
    assert can_sign_in(room, "ivan", "ivan-again-1")
