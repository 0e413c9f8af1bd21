"""The room's JupyterHub config file (``jupyterhub -f`` loads it), built from the room spec.

Every attendee gets: a home under ``<room>/homes/<name>`` with their own git copy of the
workshop (nbgitpuller: the instructor pushes a fix, attendees pull it and keep their edits),
``MLOPS_ATTENDEE`` = their name, ``MLOPS_RUN_ROOT`` inside their home, JupyterLab opening on
the notebooks. The idle culler stops abandoned servers; the room service is the instructor's
page, reachable only by instructors.
"""

# ruff: noqa: F821  (``get_config`` is provided by JupyterHub when it loads this file)
from __future__ import annotations

import sys
from pathlib import Path

from mlops_helpers.room.authenticator import NAME_PATTERN, WorkshopAuthenticator
from mlops_helpers.room.spawner import configure_attendees
from mlops_helpers.room.spec import ROOM_SERVICE, SPEC_ENV, RoomSpec, read_code

spec = RoomSpec.load()
room = Path(spec.room_dir)

c = get_config()  # type: ignore[name-defined]
c.JupyterHub.bind_url = f"http://{spec.ip}:{spec.hub_port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{spec.hub_api_port}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{spec.proxy_api_port}"
c.ConfigurableHTTPProxy.command = ["configurable-http-proxy"]
c.JupyterHub.db_url = f"sqlite:///{room / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(room / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(room / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every attendee's server
c.JupyterHub.cleanup_proxy = True

c.JupyterHub.authenticator_class = WorkshopAuthenticator
c.WorkshopAuthenticator.workshop_code = read_code(room, "workshop")
c.WorkshopAuthenticator.instructor_code = read_code(room, "instructor")
c.WorkshopAuthenticator.instructors = spec.instructors
c.WorkshopAuthenticator.dbm_path = str(room / "passwords.dbm")
c.WorkshopAuthenticator.min_password_length = 6
c.Authenticator.username_pattern = NAME_PATTERN
c.Authenticator.admin_users = set(spec.instructors)
c.Authenticator.allow_all = True  # anyone with the workshop code may claim a name


def landing_page(handler: object) -> str:
    """Instructors land on the room page, attendees in their own JupyterLab."""
    user = handler.current_user  # type: ignore[attr-defined]
    if user is not None and user.name in spec.instructors:
        return f"/services/{ROOM_SERVICE}/"
    return "/hub/spawn"


c.JupyterHub.default_url = landing_page

# How each attendee's server runs: as their own system user with limits (spawner.py).
configure_attendees(c, spec)

c.JupyterHub.services = [
    {"name": "room-admin", "api_token": read_code(room, "room-admin-token")},
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={spec.idle_timeout_s}",
            "--cull-every=60",
        ],
        "environment": {"MLOPS_ROOM": str(room)},  # the hub may leave it behind on shutdown
    },
    {
        "name": ROOM_SERVICE,
        "url": f"http://127.0.0.1:{spec.service_port}",
        "command": [sys.executable, "-m", "mlops_helpers.room.instructor"],
        "environment": {SPEC_ENV: str(spec.spec_path)},
        "oauth_no_confirm": True,
        "display": True,
    },
]
c.JupyterHub.load_roles = [
    # the launcher's own token (room-admin-token, owner-only): start, stop and list servers
    {
        "name": "room-admin",
        "services": ["room-admin"],
        "scopes": [
            "admin:users",
            "admin:servers",
            "read:servers",
            "tokens",
            "list:users",
            "read:users",
        ],
    },
    {
        "name": "idle-culler",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    },
    {
        "name": "instructors",
        "users": spec.instructors,
        "scopes": [f"access:services!service={ROOM_SERVICE}", "admin:users", "admin:servers"],
    },
]


def room_page_sees_servers() -> None:
    """The room page reads every server's state from the hub's REST API with its own token,
    and resets an attendee by deleting the hub user (the authenticator then forgets the
    password). The hub checks each server's process every few seconds (default 30 s), so a
    server that was killed shows as stopped on the page within seconds."""
    c.JupyterHub.load_roles.append(
        {
            "name": "room-page",
            "services": [ROOM_SERVICE],
            "scopes": ["list:users", "read:users", "read:servers", "delete:users"],
        }
    )
    c.Spawner.poll_interval = 3


room_page_sees_servers()
