"""An attendee, scripted: sign in to the hub, start a server, run notebooks in it.

Used by the room test and the room benchmark. Signing in goes through the hub's own login
form (the real authenticator); everything after that is the hub's REST API and the Jupyter
server's REST and kernel WebSocket API, as JupyterLab itself uses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from tornado.httpclient import HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, websocket_connect

from mlops_helpers.errors import WorkshopError
from mlops_helpers.waiting import wait_until


class AttendeeError(WorkshopError):
    """Signing in, starting a server or running a notebook failed."""


class Attendee:
    def __init__(
        self, hub_url: str, name: str, password: str, workshop_code: str | None = None
    ) -> None:
        """``password`` is the attendee's own (or an instructor's code); with
        ``workshop_code``, a name not claimed yet is claimed with it, ``password`` chosen."""
        self.hub_url = hub_url.rstrip("/")
        self.name = name
        self.password = password
        self.workshop_code = workshop_code
        self.http = requests.Session()
        self.token = ""

    def _xsrf(self) -> dict[str, str]:
        return {"X-XSRFToken": self.http.cookies.get("_xsrf", "")}

    def _login(self, **fields: str) -> requests.Response:
        return self.http.post(
            f"{self.hub_url}/hub/login?next=",
            timeout=60,
            allow_redirects=False,
            data={"username": self.name, "_xsrf": self.http.cookies.get("_xsrf", ""), **fields},
        )

    def sign_in(self) -> None:
        """Sign in with the password; a new name is first claimed with the workshop code."""
        self.http.get(f"{self.hub_url}/hub/login", timeout=30)
        answer = self._login(password=self.password)
        if answer.status_code != 302 and self.workshop_code:
            answer = self._login(password=self.workshop_code)
            if answer.status_code == 200 and "Choose your password" in answer.text:
                answer = self._login(
                    password=self.workshop_code,
                    new_password=self.password,
                    new_password_again=self.password,
                )
        if answer.status_code != 302:
            raise AttendeeError(f"{self.name} could not sign in ({answer.status_code})")

    def hub_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(
            method,
            f"{self.hub_url}/hub/api/{path.lstrip('/')}",
            headers=self._xsrf(),
            timeout=60,
            **kwargs,
        )

    def start_server(self, timeout_s: float = 180.0) -> None:
        """Start the attendee's server through the REST API and wait until it is ready."""
        started = self.hub_api("POST", f"users/{self.name}/server")
        if started.status_code not in (201, 202, 400):  # 400: already running
            raise AttendeeError(f"{self.name}: server did not start: {started.text[:200]}")

        def ready() -> bool | str:
            server = self.hub_api("GET", f"users/{self.name}").json()["servers"].get("", {})
            return True if server.get("ready") else str(server.get("pending") or "starting")

        wait_until(
            ready,
            timeout=timeout_s,
            interval=0.2,
            what=f"{self.name}'s server",
            until=lambda status: status is True,
            progress=False,
        )
        made = self.hub_api(
            "POST",
            f"users/{self.name}/tokens",
            json={"note": "workshop client", "expires_in": 3600},
        )
        if made.status_code != 201:
            raise AttendeeError(f"{self.name}: no API token: {made.text[:200]}")
        self.token = made.json()["token"]

    @property
    def server_url(self) -> str:
        return f"{self.hub_url}/user/{quote(self.name)}"

    def server_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.server_url}/api/{path.lstrip('/')}",
            headers={"Authorization": f"token {self.token}"},
            timeout=60,
            **kwargs,
        )

    def notebook(self, path: str) -> dict[str, Any]:
        """The notebook at ``path`` (relative to the home), as nbformat JSON."""
        answer = self.server_api("GET", f"contents/{quote(path)}")
        if answer.status_code != 200:
            raise AttendeeError(f"{self.name}: cannot open {path}: {answer.text[:200]}")
        return answer.json()["content"]

    def save_notebook(self, path: str, notebook: dict[str, Any]) -> None:
        """Save a notebook into the home, as JupyterLab does."""
        answer = self.server_api(
            "PUT",
            f"contents/{quote(path)}",
            json={"type": "notebook", "format": "json", "content": notebook},
        )
        if answer.status_code not in (200, 201):
            raise AttendeeError(f"{self.name}: cannot save {path}: {answer.text[:200]}")

    def run_notebook(self, path: str, timeout_s: float = 600.0) -> NotebookRun:
        """Run every code cell of ``path`` (relative to the home) in a fresh kernel."""
        return asyncio.run(self._run_notebook(path, timeout_s))

    async def _run_notebook(self, path: str, timeout_s: float) -> NotebookRun:
        cells = [c for c in self.notebook(path)["cells"] if c["cell_type"] == "code"]
        session = self.server_api(
            "POST",
            "sessions",
            json={"path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}},
        )
        if session.status_code != 201:
            raise AttendeeError(f"{self.name}: no kernel for {path}: {session.text[:200]}")
        info = session.json()
        run = NotebookRun(self.name, path)
        start = time.monotonic()
        try:
            ws_url = (
                self.server_url.replace("http", "ws", 1)
                + f"/api/kernels/{info['kernel']['id']}/channels"
            )
            request = HTTPRequest(
                ws_url,
                headers={"Authorization": f"token {self.token}"},
                connect_timeout=120,
                request_timeout=300,
            )
            socket = await websocket_connect(request)
            try:
                for index, cell in enumerate(cells):
                    remaining = timeout_s - (time.monotonic() - start)
                    error = await asyncio.wait_for(
                        _execute(socket, "".join(cell["source"])), timeout=max(remaining, 1)
                    )
                    run.cells += 1
                    if error:
                        run.error = f"cell {index}: {error}"
                        break
            finally:
                await _close(socket)
        except TimeoutError:
            run.error = f"timed out after {timeout_s:.0f} s"
        except (WebSocketClosedError, StreamClosedError):
            run.error = f"the kernel connection closed after {run.cells} cells"
        finally:
            run.seconds = time.monotonic() - start
            self.server_api("DELETE", f"sessions/{info['id']}")
        return run

    def run_code(self, code: str, timeout_s: float = 300.0) -> tuple[str, str]:
        """Run ``code`` in a new kernel of the attendee's server, as a cell of theirs would
        run: (what it printed, the error or ''). The kernel is shut down afterwards."""
        return asyncio.run(self._run_code(code, timeout_s))

    async def _run_code(self, code: str, timeout_s: float) -> tuple[str, str]:
        kernel = self.server_api("POST", "kernels", json={"name": "python3"})
        if kernel.status_code != 201:
            raise AttendeeError(f"{self.name}: no kernel: {kernel.text[:200]}")
        kernel_id = kernel.json()["id"]
        printed: list[str] = []
        try:
            request = HTTPRequest(
                self.server_url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels",
                headers={"Authorization": f"token {self.token}"},
                connect_timeout=120,
                request_timeout=300,
            )
            socket = await websocket_connect(request)
            try:
                error = await asyncio.wait_for(_execute(socket, code, printed), timeout=timeout_s)
            finally:
                await _close(socket)
        finally:
            self.server_api("DELETE", f"kernels/{kernel_id}")
        return "".join(printed), error

    def stop_server(self) -> None:
        self.hub_api("DELETE", f"users/{self.name}/server")


def attendee_session(
    hub_url: str, name: str, code: str, notebooks: list[str], timeout_s: float = 800.0
) -> list[NotebookRun]:
    """One attendee's morning: claim a name with the workshop ``code`` (and a password of
    their own), start the server, run ``notebooks`` (paths from the home) side by side in
    their own kernels."""
    import secrets
    from concurrent.futures import ThreadPoolExecutor

    attendee = Attendee(hub_url, name, secrets.token_urlsafe(12), workshop_code=code)
    attendee.sign_in()
    attendee.start_server()
    with ThreadPoolExecutor(len(notebooks)) as pool:
        return list(pool.map(lambda path: attendee.run_notebook(path, timeout_s), notebooks))


@dataclass
class NotebookRun:
    attendee: str
    path: str
    cells: int = 0
    seconds: float = 0.0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error


async def _close(socket: Any) -> None:
    """Close a kernel WebSocket and wait (briefly) for the server's close, so the connection
    is gone before the event loop is."""
    socket.close()
    with contextlib.suppress(TimeoutError):
        while await asyncio.wait_for(socket.read_message(), timeout=5) is not None:
            pass


async def _execute(socket: Any, code: str, printed: list[str] | None = None) -> str:
    """Send one execute_request; return the error text, or '' when the cell succeeded.
    What the cell prints to stdout is appended to ``printed``, if given."""
    msg_id = uuid.uuid4().hex
    await socket.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                    "date": "",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": True,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    error, replied, idle = "", False, False
    while True:
        raw = await socket.read_message()
        if raw is None:
            return error or "the kernel connection closed"
        if isinstance(raw, bytes):
            continue
        message = json.loads(raw)
        if message["header"]["msg_type"] == "status" and message["content"].get(
            "execution_state"
        ) in ("restarting", "dead"):
            return "the kernel died"  # ended from outside (e.g. over its memory limit)
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream" and printed is not None and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])
        if kind == "error":
            content = message["content"]
            error = f"{content.get('ename')}: {content.get('evalue')}"
        if kind == "execute_reply":
            if message["content"].get("status") != "ok" and not error:
                error = str(message["content"].get("ename", "failed"))
            replied = True
        if kind == "status" and message["content"].get("execution_state") == "idle":
            idle = True  # iopub's last word on this request: every stream came before it
        if replied and idle:  # the reply (shell) and the output (iopub) can come in any order
            return error
