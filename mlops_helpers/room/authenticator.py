"""Sign-in for a workshop room: a name of your own, with a password of your own.

Built on ``jupyterhub-firstuseauthenticator`` (maintained in the jupyterhub organisation),
which keeps a bcrypt hash per name in a dbm file. Our rules on top:

- A new name is claimed with the workshop code the instructor hands out, and the attendee then
  chooses their own password on the page that follows: the code is never a password, so
  knowing it does not let anyone into a name that is already claimed.
- ``/hub/auth/change-password`` asks for the current password before it sets a new one.
- Failed attempts are limited per name and per address (a sliding window); the hashing runs in
  a worker thread, so a room full of sign-ins never stalls the hub's event loop.
- The instructor resets an attendee from the room page: the room page deletes the hub user,
  and ``delete_user`` forgets their password (their home and work stay), so their next
  sign-in with the workshop code lets them choose a new one.
- Instructors sign in with the instructor code.

Why this one: attendees pick their own short names, which become the suffix of every
resource they create (``MLOPS_ATTENDEE``); ``tmpauthenticator`` hands out random names and
has no code at all, and ``nativeauthenticator`` needs the instructor to approve every
sign-up by hand, which a room of thirty cannot wait for.

This module is also mounted on its own into the hub of the Kubernetes path
(``deploy/room/z2jh-config.yaml``): it imports nothing from the workshop package.
"""

from __future__ import annotations

import asyncio
import dbm
import hmac
import time
from collections import defaultdict, deque
from typing import Any

import bcrypt
from firstuseauthenticator import FirstUseAuthenticator
from firstuseauthenticator.firstuseauthenticator import CustomLoginHandler
from jupyterhub.handlers import BaseHandler
from tornado import web
from traitlets import Integer, List, Unicode

NAME_PATTERN = r"^[a-z][a-z0-9]{1,19}$"  # also a valid MLOPS_ATTENDEE suffix

CHOOSE_PAGE = """{% extends "page.html" %}
{% block main %}
<div class="container" style="max-width: 32rem">
  <h1>Choose your password</h1>
  <p>The name <b>{{ username }}</b> is free. Choose a password of your own for it: you sign in
  with it from now on (the workshop code only opens new names).</p>
  {% if message %}<p class="alert alert-danger">{{ message }}</p>{% endif %}
  <form method="post" action="{{ action }}">
    <input type="hidden" name="_xsrf" value="{{ xsrf }}">
    <input type="hidden" name="username" value="{{ username }}">
    <input type="hidden" name="password" value="{{ code }}">
    <label for="new_password">New password (at least {{ min_length }} characters)</label>
    <input class="form-control" type="password" id="new_password" name="new_password"
           autocomplete="new-password" autofocus required>
    <label for="new_password_again">The same again</label>
    <input class="form-control" type="password" id="new_password_again"
           name="new_password_again" autocomplete="new-password" required>
    <button class="btn btn-primary mt-3" type="submit" id="choose_submit">Claim the name</button>
  </form>
</div>
{% endblock %}
"""

CHANGE_PAGE = """{% extends "page.html" %}
{% block main %}
<div class="container" style="max-width: 32rem">
  <h1>Change your password</h1>
  {% if message %}<p class="alert alert-{{ alert }}">{{ message }}</p>{% endif %}
  <form method="post">
    <input type="hidden" name="_xsrf" value="{{ xsrf }}">
    <label for="current_password">Current password</label>
    <input class="form-control" type="password" id="current_password" name="current_password"
           autocomplete="current-password" required>
    <label for="new_password">New password (at least {{ min_length }} characters)</label>
    <input class="form-control" type="password" id="new_password" name="new_password"
           autocomplete="new-password" required>
    <label for="new_password_again">The same again</label>
    <input class="form-control" type="password" id="new_password_again"
           name="new_password_again" autocomplete="new-password" required>
    <button class="btn btn-primary mt-3" type="submit" id="change_submit">Change it</button>
  </form>
</div>
{% endblock %}
"""


class AttemptLimit:
    """At most ``limit`` failures per key in the last ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= time.monotonic() - self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, key: str) -> float:
        """0 when ``key`` may try now, else the seconds until it may."""
        failures = self._recent(key)
        if len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window_s - time.monotonic())

    def failed(self, key: str) -> None:
        self._recent(key).append(time.monotonic())

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


def _hash(password: str) -> bytes:
    return bcrypt.hashpw(password.encode("utf8"), bcrypt.gensalt())


def _matches(password: str, stored: bytes) -> bool:
    return bcrypt.checkpw(password.encode("utf8"), stored)


class WorkshopLoginHandler(CustomLoginHandler):
    """The hub's login form, which shows "choose your password" for a name being claimed."""

    choose_password: dict[str, str] | None = None

    async def _render(
        self, login_error: str | None = None, username: str | None = None, **kwargs: Any
    ) -> str:
        if self.choose_password is None:
            return await super()._render(login_error, username, **kwargs)
        self.set_status(200)
        page = self.settings["jinja2_env"].from_string(CHOOSE_PAGE)
        return await page.render_async(
            {
                **self.template_namespace,
                **self.choose_password,
                "action": self.request.uri,
                "xsrf": self.xsrf_token.decode("ascii"),
                "min_length": self.authenticator.min_password_length,
            }
        )


class ChangePasswordHandler(BaseHandler):
    """``/hub/auth/change-password``: the current password, then the new one twice."""

    async def _page(self, message: str = "", alert: str = "danger") -> None:
        page = self.settings["jinja2_env"].from_string(CHANGE_PAGE)
        self.finish(
            await page.render_async(
                {
                    **self.template_namespace,
                    "message": message,
                    "alert": alert,
                    "xsrf": self.xsrf_token.decode("ascii"),
                    "min_length": self.authenticator.min_password_length,
                }
            )
        )

    @web.authenticated
    async def get(self) -> None:
        await self._page()

    @web.authenticated
    async def post(self) -> None:
        auth: WorkshopAuthenticator = self.authenticator
        problem = await auth.change_password(
            self.current_user.name,
            self.request.remote_ip or "",
            self.get_body_argument("current_password", "", strip=False),
            self.get_body_argument("new_password", "", strip=False),
            self.get_body_argument("new_password_again", "", strip=False),
        )
        if problem:
            self.set_status(403)
            await self._page(problem)
        else:
            await self._page("Your password has been changed.", "success")


class WorkshopAuthenticator(FirstUseAuthenticator):
    workshop_code = Unicode(config=True, help="The code attendees use to claim a name.")
    instructor_code = Unicode(config=True, help="The code instructors sign in with.")
    instructors = List(Unicode(), config=True, help="Names that sign in as instructors.")
    failures_per_name = Integer(5, config=True, help="Failed sign-ins a name may have per window.")
    failures_per_address = Integer(
        100, config=True, help="Failed sign-ins one address may have per window (a room's NAT)."
    )
    failure_window_s = Integer(300, config=True, help="The window of the attempt limits.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.by_name = AttemptLimit(self.failures_per_name, self.failure_window_s)
        self.by_address = AttemptLimit(self.failures_per_address, self.failure_window_s)

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [
            (r"/login", WorkshopLoginHandler),
            (r"/auth/change-password", ChangePasswordHandler),
        ]

    def _stored(self, name: str) -> bytes | None:
        try:
            with dbm.open(self.dbm_path, "r") as db:
                return db.get(name.encode())
        except dbm.error:  # no password store yet: nobody has claimed anything
            return None

    def _store(self, name: str, hashed: bytes) -> None:
        with dbm.open(self.dbm_path, "c", 0o600) as db:
            db[name.encode()] = hashed

    def _limited(self, name: str, address: str) -> str:
        """Why this attempt is refused before any check, or ``""``."""
        wait = max(self.by_name.wait_s(name), self.by_address.wait_s(address))
        if wait:
            return f"Too many failed attempts: try again in {int(wait) + 1} s."
        return ""

    def _failed(self, name: str, address: str) -> None:
        self.by_name.failed(name)
        self.by_address.failed(address)

    def _new_password_problem(self, new: str, again: str) -> str:
        if len(new) < self.min_password_length:
            return f"Choose a password of at least {self.min_password_length} characters."
        if new != again:
            return "The two passwords differ."
        if hmac.compare_digest(new, self.workshop_code):
            return "Choose a password of your own, not the workshop code."
        return ""

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        if not name or not self.validate_username(name):
            handler.custom_login_error = (
                "Use 2-20 lowercase letters or digits, starting with a letter."
            )
            return None
        address = handler.request.remote_ip or ""
        refused = self._limited(name, address)
        if refused:
            handler.custom_login_error = refused
            return None
        if name in self.instructors:
            if bool(self.instructor_code) and hmac.compare_digest(password, self.instructor_code):
                self.by_name.clear(name)
                return name
            self._failed(name, address)
            return None
        stored = self._stored(name)
        if stored is not None:
            if await asyncio.to_thread(_matches, password, stored):  # bcrypt: ~0.3 s of CPU
                self.by_name.clear(name)
                return name
            self._failed(name, address)
            return None
        if not (self.workshop_code and hmac.compare_digest(password, self.workshop_code)):
            self._failed(name, address)
            handler.custom_login_error = "New name: sign in with the workshop code."
            return None
        return await self._claim(handler, name, data)

    async def _claim(self, handler: Any, name: str, data: dict[str, str]) -> str | None:
        """The workshop code opened a new name: the attendee chooses its password."""
        choose = {"username": name, "code": data.get("password", ""), "message": ""}
        if "new_password" not in data:
            handler.choose_password = choose
            return None
        problem = self._new_password_problem(
            data.get("new_password", ""), data.get("new_password_again", "")
        )
        if problem:
            handler.choose_password = {**choose, "message": problem}
            return None
        hashed = await asyncio.to_thread(_hash, data["new_password"])
        if self._stored(name) is not None:  # claimed by someone else meanwhile
            handler.custom_login_error = "That name was just claimed: pick another."
            return None
        self._store(name, hashed)
        return name

    async def change_password(
        self, name: str, address: str, current: str, new: str, again: str
    ) -> str:
        """``""`` when the password was changed, else why not."""
        refused = self._limited(name, address)
        if refused:
            return refused
        stored = self._stored(name)
        if stored is None or not await asyncio.to_thread(_matches, current, stored):
            self._failed(name, address)
            return "The current password is wrong."
        problem = self._new_password_problem(new, again)
        if problem:
            return problem
        self._store(name, await asyncio.to_thread(_hash, new))
        return ""
