"""The one way to wait: bounded, polled, visible, and with a useful timeout message."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mlops_helpers.errors import WaitTimeout

T = TypeVar("T")


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = getattr(shell, "get_ipython", lambda: None)()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def pause(seconds: float) -> None:
    """Block for ``seconds``; only for poll intervals inside bounded loops."""
    threading.Event().wait(seconds)


def wait_until(
    probe: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.5,
    until: Callable[[T], bool] = bool,
    describe: Callable[[T], str] = repr,
    fail_if: Callable[[T], str | None] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
    progress: bool | None = None,
) -> T:
    """Call ``probe`` every ``interval`` seconds until ``until(result)`` is true.

    ``what`` names the resource in messages ("endpoint sm-test-jd"). ``fail_if`` may
    return a reason to stop at once (a training job that FAILED will not succeed later).
    Exceptions listed in ``ignore`` (connection refused while a server starts) count as a
    status, not a failure. Raises ``WaitTimeout`` with the seconds waited and last status.
    """
    if timeout <= 0 or interval <= 0:
        raise ValueError("timeout and interval must be positive")
    show = _in_notebook() or sys.stderr.isatty() if progress is None else progress
    bar: Any = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=round(timeout), desc=f"waiting for {what}", unit="s", leave=False)
    start = time.monotonic()
    last_status = "not polled yet"
    try:
        while True:
            try:
                result = probe()
            except ignore as exc:
                last_status = f"{type(exc).__name__}: {exc}"
            else:
                last_status = describe(result)
                if until(result):
                    return result
                if fail_if is not None:
                    reason = fail_if(result)
                    if reason:
                        from mlops_helpers.errors import StageError

                        raise StageError(f"{what}: {reason} (status: {last_status})")
            elapsed = time.monotonic() - start
            if bar is not None:
                bar.n = min(round(elapsed), bar.total)
                bar.set_postfix_str(last_status[:60], refresh=True)
            if elapsed >= timeout:
                raise WaitTimeout(what, elapsed, last_status)
            pause(min(interval, max(timeout - elapsed, 0.01)))
    finally:
        if bar is not None:
            bar.close()
