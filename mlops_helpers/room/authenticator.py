"""Sign-in for a workshop room: a name of your own, claimed with the workshop code.

Built on ``jupyterhub-firstuseauthenticator`` (maintained in the jupyterhub organisation):
the first sign-in of a name stores a bcrypt hash of the password used, and every later
sign-in of that name must match it. We add one rule in front: a name that is new can only
be claimed with the workshop code the instructor hands out, so strangers cannot open
accounts, and a name, once claimed, belongs to that attendee (they may change its password
at ``/hub/auth/change-password``). Instructors sign in with the instructor code.

Why this one: attendees pick their own short names, which become the suffix of every
resource they create (``MLOPS_ATTENDEE``); ``tmpauthenticator`` hands out random names and
has no code at all, and ``nativeauthenticator`` needs the instructor to approve every
sign-up by hand, which a room of thirty cannot wait for.
"""

from __future__ import annotations

import dbm
import hmac
from typing import Any

from firstuseauthenticator import FirstUseAuthenticator
from traitlets import List, Unicode

NAME_PATTERN = r"^[a-z][a-z0-9]{1,19}$"  # also a valid MLOPS_ATTENDEE suffix


class WorkshopAuthenticator(FirstUseAuthenticator):
    workshop_code = Unicode(config=True, help="The code attendees use to claim a name.")
    instructor_code = Unicode(config=True, help="The code instructors sign in with.")
    instructors = List(Unicode(), config=True, help="Names that sign in as instructors.")

    def _name_claimed(self, name: str) -> bool:
        try:
            with dbm.open(self.dbm_path, "r") as db:
                return name.encode() in db
        except dbm.error:  # no password store yet: nobody has claimed anything
            return False

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        if not name or not self.validate_username(name):
            handler.custom_login_error = (
                "Use 2-20 lowercase letters or digits, starting with a letter."
            )
            return None
        if name in self.instructors:
            ok = bool(self.instructor_code) and hmac.compare_digest(password, self.instructor_code)
            return name if ok else None
        if not self._name_claimed(name) and not hmac.compare_digest(password, self.workshop_code):
            handler.custom_login_error = "New name: sign in with the workshop code."
            return None
        return await super().authenticate(handler, data)
