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


class _Progress:
    """A progress line that tells the truth about one wait.

    The bar fills with elapsed time against the timeout. It appears only once a wait has
    lasted ``SHOW_AFTER_S`` (instant waits leave nothing behind). A wait that succeeds ends
    as a full, done bar (green in JupyterLab) with the seconds it took and the last status;
    only a timeout or failure ends red. tqdm's notebook widget turns a closed bar red when
    ``n < total`` and hides it when ``leave=False``, which is why the bar is filled to its
    total on success and kept (``leave=True``) either way.
    """

    SHOW_AFTER_S = 0.5

    def __init__(self, what: str, timeout: float, enabled: bool) -> None:
        self.what = what
        self.timeout = timeout
        self.enabled = enabled
        self.bar: Any = None

    def update(self, elapsed: float, status: str) -> None:
        if not self.enabled or (self.bar is None and elapsed < self.SHOW_AFTER_S):
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.timeout,
                desc=f"waiting for {self.what}",
                leave=True,
                bar_format=_bar_format(elapsed, status),
            )
        self.bar.bar_format = _bar_format(elapsed, status)
        self.bar.n = min(elapsed, self.timeout)
        self.bar.refresh()

    def finish(self, elapsed: float, status: str, ok: bool) -> None:
        bar = self.bar
        if bar is None:
            return
        bar.bar_format = _bar_format(elapsed, status)
        if ok:  # a full bar, which the notebook widget closes as "success" (green)
            bar.set_description_str(f"done: {self.what}", refresh=False)
            bar.reset(total=max(elapsed, 1e-3))
            bar.update(bar.total)
        else:
            bar.set_description_str(f"FAILED: {self.what}", refresh=False)
            if hasattr(bar, "container"):  # the notebook widget: red, however full
                bar.disp(bar_style="danger", check_delay=False)
            else:
                bar.colour = "red"
            bar.refresh()
        bar.close()


def _bar_format(elapsed: float, status: str) -> str:
    """``{desc} |bar| 2.3 s, last status: ...`` (braces in the status are not fields)."""
    text = f"{elapsed:.1f} s, last status: {status[:60]}"
    return "{desc} |{bar}| " + text.replace("{", "{{").replace("}", "}}")


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
    ``progress`` (default: in a notebook or a terminal) shows a progress line for waits
    that last more than half a second.
    """
    if timeout <= 0 or interval <= 0:
        raise ValueError("timeout and interval must be positive")
    show = _in_notebook() or sys.stderr.isatty() if progress is None else progress
    bar = _Progress(what, timeout, show)
    start = time.monotonic()
    last_status = "not polled yet"
    succeeded = False
    try:
        while True:
            try:
                result = probe()
            except ignore as exc:
                last_status = f"{type(exc).__name__}: {exc}"
            else:
                last_status = describe(result)
                if until(result):
                    succeeded = True
                    return result
                if fail_if is not None:
                    reason = fail_if(result)
                    if reason:
                        from mlops_helpers.errors import StageError

                        raise StageError(f"{what}: {reason} (status: {last_status})")
            elapsed = time.monotonic() - start
            bar.update(elapsed, last_status)
            if elapsed >= timeout:
                raise WaitTimeout(what, elapsed, last_status)
            pause(min(interval, max(timeout - elapsed, 0.01)))
    finally:
        bar.finish(time.monotonic() - start, last_status, succeeded)
