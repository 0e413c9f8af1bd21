"""The instructor's page: who is where in the workshop, refreshed by itself.

A JupyterHub service (``/services/room/``): the hub signs people in (OAuth) and only users
holding ``access:services!service=room`` (the instructors' role) get through. The page
polls ``api/progress`` every few seconds; the grid is read straight from the attendees'
run directories, so it shows the stages as the attendees' own processes recorded them.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer

from mlops_helpers.room.authenticator import NAME_PATTERN
from mlops_helpers.room.grid import STUCK_AFTER_S, room_grid, room_view, scenario_stages
from mlops_helpers.room.spec import SPEC_ENV, RoomSpec

REFRESH_MS = 3000
HUB_TIMEOUT_S = 5.0
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workshop room</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
 table {{ border-collapse: collapse; font-size: 13px; }}
 th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: center; }}
 th.attendee, td.server, td.now {{ text-align: left; }}
 td.done {{ background: #c8e6c9; }} td.running {{ background: #fff59d; }}
 td.failed, td.interrupted, td.stuck {{ background: #ef9a9a; }} td.not-started {{ color: #999; }}
 td.server.stopped, td.server.unknown {{ color: #b71c1c; }}
 td.exercises {{ font-family: monospace; letter-spacing: 2px; }}
 .small {{ color: #666; font-size: 11px; }}
 #updated {{ color: #666; font-size: 12px; }}
 th.stage {{ writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal;
            padding: 4px 2px; }}
 #help li {{ margin: 2px 0; }} #help code {{ color: #b71c1c; }}
</style></head>
<body><h1>Workshop room</h1>
<p>Signed in as {user}. Green: done, yellow: running, red: failed, stuck (running for over
 {stuck_min} min) or interrupted (its server stopped mid-stage); hover for the message. Each
 scenario shows the attendee's current run only; its last column, the exercises its check
 cells found done (✓) or not yet (·). <span id="updated"></span></p>
<table id="room"></table>
<h2>Needs help</h2><ul id="help"><li>nobody, so far</li></ul>
<script>
const api = "{api}";
const resetApi = "{reset_api}";
const xsrf = "{xsrf}";  // JupyterHub checks it on script (non-navigation) requests
function ago(seconds) {{
  seconds = Math.max(0, Math.round(seconds));
  return seconds < 60 ? seconds + " s" : Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
}}
function cell(c, now) {{
  const td = document.createElement("td");
  const status = c.stuck ? "stuck" : c.status;
  td.className = status.replace(" ", "-");
  td.textContent = {{"done": "✓", "running": "…", "failed": "✗", "stuck": "⏳",
                     "interrupted": "⚠"}}[status] || "·";
  td.title = status + (c.status === "running" ? " for " + ago(now - c.at) : "")
             + (c.message ? ": " + c.message : "");
  td.dataset.status = status;
  return td;
}}
function serverCell(s, now) {{
  const td = document.createElement("td");
  td.className = "server " + s.state; td.dataset.state = s.state;
  td.textContent = s.state;
  if (s.last_activity) {{
    const small = document.createElement("div"); small.className = "small";
    small.textContent = "active " + ago(now - s.last_activity) + " ago"; td.append(small);
  }}
  if (s.limits) {{  // which memory and CPU limits apply to this server
    const small = document.createElement("div"); small.className = "small limits";
    small.textContent = s.limits; td.append(small);
  }}
  return td;
}}
function nowCell(name, room) {{
  const td = document.createElement("td"); td.className = "now";
  for (const [scenario, stages] of Object.entries(room.scenarios))
    for (const s of stages) {{
      const c = room.rows[name][scenario][s];
      if (c.status === "running")
        td.textContent = `${{scenario}} · ${{s}} · ${{ago(room.now - c.at)}}`;
    }}
  return td;
}}
function exercisesCell(room, name, scenario) {{
  // one mark per exercise, in notebook order: done as the attendee's check cell recorded it
  const td = document.createElement("td"); td.className = "exercises";
  td.dataset.scenario = scenario;
  const done = room.exercises_done[name][scenario];
  const listed = room.exercises[scenario];
  td.textContent = listed.map(e => done[e.number].done ? "✓" : "·").join("");
  const said = e => done[e.number].done ? "done"
    : "not yet" + (done[e.number].hint ? " (" + done[e.number].hint + ")" : "");
  td.title = listed.map(e => `${{e.number}} ${{e.title}}: ${{said(e)}}`).join("\\n");
  td.dataset.done = listed.filter(e => done[e.number].done).length + "/" + listed.length;
  return td;
}}
function resetCell(name) {{
  const td = document.createElement("td");
  const button = document.createElement("button");
  button.textContent = "reset password"; button.className = "reset"; button.dataset.attendee = name;
  button.onclick = async () => {{
    if (!confirm(`Reset ${{name}}? Their server stops; their files stay; their next sign-in `
                 + "with the workshop code chooses a new password.")) return;
    const r = await fetch(resetApi + encodeURIComponent(name), {{method: "POST",
      credentials: "same-origin", headers: {{"X-XSRFToken": xsrf}}}});
    button.textContent = r.ok ? "reset" : "failed: " + (await r.json()).message;
  }};
  td.append(button); return td;
}}
function render(room) {{
  const table = document.getElementById("room");
  table.replaceChildren();
  const head1 = table.insertRow(), head2 = table.insertRow();
  for (const title of ["attendee", "server", "now", ""])
    head1.insertCell().outerHTML = `<th rowspan="2" class="attendee">${{title}}</th>`;
  for (const [scenario, stages] of Object.entries(room.scenarios)) {{
    const th = document.createElement("th"); th.colSpan = stages.length;
    th.textContent = scenario; head1.appendChild(th);
    for (const s of stages) {{
      const sh = document.createElement("th"); sh.className = "stage";
      sh.textContent = s; head2.appendChild(sh);
    }}
    if ((room.exercises[scenario] || []).length) {{
      th.colSpan += 1;
      const eh = document.createElement("th"); eh.className = "stage exercises";
      eh.textContent = "exercises"; head2.appendChild(eh);
    }}
  }}
  for (const name of room.attendees) {{
    const tr = table.insertRow(); tr.dataset.attendee = name;
    const th = document.createElement("th"); th.className = "attendee"; th.textContent = name;
    tr.append(th, serverCell(room.servers[name], room.now), nowCell(name, room), resetCell(name));
    for (const [scenario, stages] of Object.entries(room.scenarios)) {{
      for (const s of stages) tr.appendChild(cell(room.rows[name][scenario][s], room.now));
      if ((room.exercises[scenario] || []).length)
        tr.appendChild(exercisesCell(room, name, scenario));
    }}
  }}
  const help = document.getElementById("help");
  help.replaceChildren(...(room.help.length ? room.help.map(h => {{
    const li = document.createElement("li"); li.dataset.why = h.why;
    li.append(`${{h.attendee}} · ${{h.scenario}} · ${{h.stage}} (${{h.why}}): `);
    const code = document.createElement("code"); code.textContent = h.message; li.append(code);
    return li;
  }}) : [Object.assign(document.createElement("li"), {{textContent: "nobody, so far"}})]));
  document.getElementById("updated").textContent =
    "updated " + new Date().toLocaleTimeString();
}}
async function refresh() {{
  try {{
    const r = await fetch(api, {{credentials: "same-origin", headers: {{"X-XSRFToken": xsrf}}}});
    if (r.ok) render(await r.json());
  }} finally {{ setTimeout(refresh, {refresh_ms}); }}
}}
refresh();
</script></body></html>
"""


def _epoch(stamp: str | None) -> float | None:
    """The hub's ISO 8601 time (``2026-12-04T15:00:00.123Z``) as seconds since the epoch."""
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def server_states(users: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each user's default server as the hub's REST API tells it: running, starting,
    stopping or stopped, and when it (or the user) was last active."""
    states = {}
    for user in users:
        server = (user.get("servers") or {}).get("")
        if not server:
            state = "stopped"
        elif server.get("ready"):
            state = "running"
        else:
            state = {"spawn": "starting", "stop": "stopping"}.get(server.get("pending"), "stopped")
        active = (server or {}).get("last_activity") or user.get("last_activity")
        states[user["name"]] = {"state": state, "last_activity": _epoch(active)}
    return states


class RoomState:
    def __init__(self, homes: Path, instructors: list[str], limits: str = "") -> None:
        self.homes = homes
        self.instructors = instructors
        self.limits = limits  # which memory and CPU limits hold (the spec says; see limits.py)
        self.stages = scenario_stages()
        self.hub_api = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
        self.token = os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @classmethod
    def from_environment(cls) -> RoomState:
        """From the room spec (``make hub``), else from ``MLOPS_ROOM_HOMES`` and
        ``MLOPS_ROOM_INSTRUCTORS`` (the Kubernetes path, where a shared volume holds the
        homes)."""
        if os.environ.get(SPEC_ENV):
            spec = RoomSpec.load()
            return cls(spec.homes, spec.instructors, spec.limits)
        names = os.environ.get("MLOPS_ROOM_INSTRUCTORS", "instructor").split(",")
        return cls(Path(os.environ["MLOPS_ROOM_HOMES"]), [n.strip() for n in names if n])

    async def hub(self, method: str, path: str) -> HTTPResponse:
        """The hub's REST API with the room page's own token (see its role in the config)."""
        return await AsyncHTTPClient().fetch(
            f"{self.hub_api}/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            request_timeout=HUB_TIMEOUT_S,
            raise_error=False,
        )

    async def servers(self) -> dict[str, dict[str, Any]] | None:
        """Every user's server state, or None when the hub does not answer."""
        try:
            answer = await self.hub("GET", "users?limit=1000")
        except OSError:
            return None
        if answer.code != 200:
            return None
        return server_states(json.loads(answer.body))

    async def grid(self) -> dict[str, Any]:
        servers = await self.servers()
        for state in (servers or {}).values():
            if self.limits:
                state["limits"] = self.limits
        names = [n for n in servers or {} if n not in self.instructors]
        grid = room_grid(self.homes, self.stages, names)
        for name in self.instructors:  # the page is about the attendees
            if name in grid["rows"]:
                grid["attendees"].remove(name)
                del grid["rows"][name]
                del grid["runs"][name]
                del grid["exercises_done"][name]
        return room_view(grid, servers, time.time())


class PageHandler(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    def get(self) -> None:
        user = self.get_current_user()
        api = url_path_join(self.settings["prefix"], "api/progress")
        xsrf = self.xsrf_token.decode()
        self.write(
            PAGE.format(
                user=html.escape(user["name"]),
                api=api,
                reset_api=url_path_join(self.settings["prefix"], "api/reset/"),
                refresh_ms=REFRESH_MS,
                stuck_min=int(STUCK_AFTER_S // 60),
                xsrf=html.escape(xsrf),
            )
        )


class ProgressHandler(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    async def get(self) -> None:
        room: RoomState = self.settings["room"]
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(await room.grid()))


class ResetHandler(HubOAuthenticated, web.RequestHandler):
    """Reset an attendee: the hub deletes the user (their server stops, their home stays)
    and the authenticator forgets their password; their next sign-in with the workshop code
    chooses a new one."""

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish({"message": message})

    @web.authenticated
    async def post(self, name: str) -> None:
        room: RoomState = self.settings["room"]
        if not re.fullmatch(NAME_PATTERN, name):
            return self.fail(400, f"{name!r} is not an attendee's name")
        if name in room.instructors:
            return self.fail(400, "instructors sign in with the instructor code: nothing to reset")
        try:
            answer = await room.hub("DELETE", f"users/{name}")
        except OSError as exc:
            return self.fail(502, f"the hub did not answer: {exc}")
        if answer.code == 404:
            return self.fail(404, f"nobody has signed in as {name}")
        if answer.code != 204:
            return self.fail(502, f"the hub refused ({answer.code}): {answer.body[:200]!r}")
        self.finish({"message": f"{name} was reset"})


def make_app(room: RoomState) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/room/")
    return web.Application(
        [
            (prefix, PageHandler),
            (url_path_join(prefix, "api/progress"), ProgressHandler),
            (url_path_join(prefix, r"api/reset/([^/]+)"), ResetHandler),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
        room=room,
        prefix=prefix,
    )


async def main() -> None:
    room = RoomState.from_environment()
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    server = HTTPServer(make_app(room))
    server.listen(url.port or 80, url.hostname or "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # the hub stops its services this way
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    asyncio.run(main())
