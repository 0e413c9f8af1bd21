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
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpserver import HTTPServer

from mlops_helpers.room.grid import room_grid, scenario_stages
from mlops_helpers.room.spec import SPEC_ENV, RoomSpec

REFRESH_MS = 3000
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Workshop room</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
 table {{ border-collapse: collapse; font-size: 13px; }}
 th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: center; }}
 th.attendee {{ text-align: left; }}
 td.done {{ background: #c8e6c9; }} td.running {{ background: #fff59d; }}
 td.failed {{ background: #ef9a9a; }} td.not-started {{ color: #999; }}
 #updated {{ color: #666; font-size: 12px; }}
 th.stage {{ writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal;
            padding: 4px 2px; }}
 #help li {{ margin: 2px 0; }} #help code {{ color: #b71c1c; }}
</style></head>
<body><h1>Workshop room</h1>
<p>Signed in as {user}. Green: done, yellow: running, red: failed (hover for the message).
 <span id="updated"></span></p>
<table id="room"></table>
<h2>Needs help</h2><ul id="help"><li>nobody, so far</li></ul>
<script>
const api = "{api}";
const xsrf = "{xsrf}";  // JupyterHub checks it on script (non-navigation) requests
function cell(c) {{
  const td = document.createElement("td");
  td.className = c.status.replace(" ", "-");
  const marks = {{"done": "✓", "running": "…", "failed": "✗", "interrupted": "!"}};
  td.textContent = marks[c.status] || "·";
  td.title = c.status + (c.message ? ": " + c.message : "");
  td.dataset.status = c.status;
  return td;
}}
function render(room) {{
  const table = document.getElementById("room");
  table.replaceChildren();
  const head1 = table.insertRow(), head2 = table.insertRow();
  head1.insertCell().outerHTML = '<th rowspan="2" class="attendee">attendee</th>';
  for (const [scenario, stages] of Object.entries(room.scenarios)) {{
    const th = document.createElement("th"); th.colSpan = stages.length;
    th.textContent = scenario; head1.appendChild(th);
    for (const s of stages) {{
      const sh = document.createElement("th"); sh.className = "stage";
      sh.textContent = s; head2.appendChild(sh);
    }}
  }}
  for (const name of room.attendees) {{
    const tr = table.insertRow(); tr.dataset.attendee = name;
    const th = document.createElement("th"); th.className = "attendee"; th.textContent = name;
    tr.appendChild(th);
    for (const [scenario, stages] of Object.entries(room.scenarios))
      for (const s of stages) tr.appendChild(cell(room.rows[name][scenario][s]));
  }}
  const help = document.getElementById("help"), failed = [];
  for (const name of room.attendees)
    for (const [scenario, stages] of Object.entries(room.scenarios))
      for (const s of stages) {{
        const c = room.rows[name][scenario][s];
        if (c.status === "failed") failed.push([name, scenario, s, c.message]);
      }}
  help.replaceChildren(...(failed.length ? failed.map(([n, sc, st, m]) => {{
    const li = document.createElement("li");
    li.append(`${{n}} · ${{sc}} · ${{st}}: `);
    const code = document.createElement("code"); code.textContent = m; li.append(code);
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


class RoomState:
    def __init__(self, homes: Path, instructors: list[str]) -> None:
        self.homes = homes
        self.instructors = instructors
        self.stages = scenario_stages()

    @classmethod
    def from_environment(cls) -> RoomState:
        """From the room spec (``make hub``), else from ``MLOPS_ROOM_HOMES`` and
        ``MLOPS_ROOM_INSTRUCTORS`` (the Kubernetes path, where a shared volume holds the
        homes)."""
        if os.environ.get(SPEC_ENV):
            spec = RoomSpec.load()
            return cls(spec.homes, spec.instructors)
        names = os.environ.get("MLOPS_ROOM_INSTRUCTORS", "instructor").split(",")
        return cls(Path(os.environ["MLOPS_ROOM_HOMES"]), [n.strip() for n in names if n])

    def grid(self) -> dict[str, Any]:
        grid = room_grid(self.homes, self.stages)
        for name in self.instructors:  # the page is about the attendees
            if name in grid["rows"]:
                grid["attendees"].remove(name)
                del grid["rows"][name]
        return grid


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
                refresh_ms=REFRESH_MS,
                xsrf=html.escape(xsrf),
            )
        )


class ProgressHandler(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    def get(self) -> None:
        room: RoomState = self.settings["room"]
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(room.grid()))


def make_app(room: RoomState) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/room/")
    return web.Application(
        [
            (prefix, PageHandler),
            (url_path_join(prefix, "api/progress"), ProgressHandler),
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
