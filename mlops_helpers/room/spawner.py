"""The room's spawner: JupyterHub's local-process spawner, without its waits' slack.

JupyterHub waits for a new server to answer, and for a stopped one to exit, with an
exponential back-off whose steps grow to 5 s with random jitter: a server that took 4 s to
start or 2 s to stop is noticed up to 5 s later, once per attendee, at every start and every
end of a room. Here both waits poll the process itself every 0.1 s (a connect to its port, a
``poll()`` of its pid: both cheap), so the hub's own check that follows succeeds at once.
"""

from __future__ import annotations

import asyncio

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import can_connect

POLL_S = 0.1


class RoomSpawner(SimpleLocalProcessSpawner):
    async def start(self) -> tuple[str, int]:
        """Start the server, and return once it accepts connections, has exited or has had
        ``start_timeout`` seconds: the hub's own checks then report any failure as usual."""
        ip, port = await super().start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while await self.poll() is None and not can_connect(ip, port) and loop.time() < deadline:
            await asyncio.sleep(POLL_S)
        return ip, port

    async def wait_for_death(self, timeout: float = 10) -> bool:
        """True once the server's process has exited, False after ``timeout`` seconds (the
        hub then sends the next, harder signal)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.poll() is None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True
