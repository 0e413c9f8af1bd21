"""Live traffic for the canary: requests to production's address (the router), as users
would send them, counting which environment answered each one."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from mlops_helpers.errors import StageError

IRIS_ROWS = (
    [5.1, 3.5, 1.4, 0.2],
    [6.2, 2.9, 4.3, 1.3],
    [6.9, 3.1, 5.4, 2.1],
    [5.7, 2.8, 4.1, 1.3],
    [4.8, 3.0, 1.4, 0.1],
    [6.3, 3.3, 6.0, 2.5],
)
# users arrive side by side: a few clients at once keep both cores busy (router and apps)
# without queueing so deep that latency measures the queue instead of the model
USERS = 3


def _user(
    url: str, requests: range, rows: Sequence[Sequence[float]], timeout: float
) -> Counter[str]:
    """One user's requests over one keep-alive connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    answered: Counter[str] = Counter()
    try:
        for i in requests:
            body = json.dumps({"instances": [list(rows[i % len(rows)])]})
            conn.request(
                "POST", "/predict", body=body, headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            answered[response.getheader("X-Environment") or "unknown"] += 1
    except OSError as exc:
        raise StageError(
            f"production's address {url} stopped answering after "
            f"{sum(answered.values())} of a user's requests: {exc}"
        ) from None
    finally:
        conn.close()
    return answered


def drive(
    url: str,
    requests: int,
    rows: Sequence[Sequence[float]] = IRIS_ROWS,
    timeout: float = 30.0,
    users: int = USERS,
) -> Counter[str]:
    """Send ``requests`` predictions to ``url`` from ``users`` clients at once, each over
    its own keep-alive connection; returns how many each environment answered (the
    router's ``X-Environment`` header)."""
    users = max(1, min(users, requests))
    shares = [range(start, requests, users) for start in range(users)]
    with ThreadPoolExecutor(max_workers=users) as pool:
        counts = list(pool.map(lambda share: _user(url, share, rows, timeout), shares))
    return sum(counts, Counter())


def drive_until_judged(
    url: str, min_requests: int, limit: int = 5000, batch: int = 100
) -> Counter[str]:
    """Send live traffic in batches until canary and production have each answered
    ``min_requests`` (what the canary gate needs to judge), or ``limit`` requests went out.
    At a 10 % share that is about ten times ``min_requests``, more or less by chance, so a
    fixed number of requests would leave the gate short now and then."""
    answered: Counter[str] = Counter()
    while sum(answered.values()) < limit:
        answered += drive(url, min(batch, limit - sum(answered.values())))
        if min(answered["canary"], answered["production"]) >= min_requests:
            break
    return answered
