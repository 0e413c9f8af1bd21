"""Live traffic for the canary: requests to production's address (the router), as users
would send them, counting which environment answered each one."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

from mlops_helpers.errors import StageError

IRIS_ROWS = ([5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.9, 3.1, 5.4, 2.1],
             [5.7, 2.8, 4.1, 1.3], [4.8, 3.0, 1.4, 0.1], [6.3, 3.3, 6.0, 2.5])


def drive(url: str, requests: int, rows: Sequence[Sequence[float]] = IRIS_ROWS,
          timeout: float = 30.0) -> Counter[str]:
    """Send ``requests`` predictions to ``url`` over one keep-alive connection; returns
    how many each environment answered (the router's ``X-Environment`` header)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                      timeout=timeout)
    answered: Counter[str] = Counter()
    try:
        for i in range(requests):
            body = json.dumps({"instances": [list(rows[i % len(rows)])]})
            conn.request("POST", "/predict", body=body,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            answered[response.getheader("X-Environment") or "unknown"] += 1
    except OSError as exc:
        raise StageError(f"production's address {url} stopped answering after "
                         f"{sum(answered.values())} requests: {exc}") from None
    finally:
        conn.close()
    return answered
