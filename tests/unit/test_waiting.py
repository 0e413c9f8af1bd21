from __future__ import annotations

import itertools

import pytest

from mlops_helpers.errors import StageError, WaitTimeout
from mlops_helpers.waiting import wait_until


def test_returns_first_value_that_passes() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter), what="counter", timeout=5, interval=0.01,
                      until=lambda v: v >= 3) == 3


def test_timeout_names_resource_seconds_and_last_status() -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: "Creating", what="endpoint sm-test-jd", timeout=0.3, interval=0.05,
                   until=lambda s: s == "InService", describe=str)
    message = str(info.value)
    assert "endpoint sm-test-jd" in message
    assert "last status: Creating" in message
    assert info.value.waited >= 0.3
    assert "timed out after 0.3" in message or "timed out after 0.4" in message


def test_ignored_exceptions_become_the_status() -> None:
    def probe() -> bool:
        raise ConnectionRefusedError("refused")

    with pytest.raises(WaitTimeout, match="ConnectionRefusedError: refused"):
        wait_until(probe, what="server", timeout=0.2, interval=0.05,
                   ignore=(ConnectionRefusedError,))


def test_other_exceptions_propagate() -> None:
    def probe() -> bool:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        wait_until(probe, what="x", timeout=1, interval=0.05)


def test_fail_if_stops_at_once() -> None:
    with pytest.raises(StageError, match="training job: job failed .*Failed"):
        wait_until(lambda: "Failed", what="training job", timeout=30, interval=0.05,
                   until=lambda s: s == "Completed", describe=str,
                   fail_if=lambda s: "job failed" if s == "Failed" else None)


def test_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        wait_until(lambda: True, what="x", timeout=0)


def test_progress_bar_is_closed(capsys: pytest.CaptureFixture[str]) -> None:
    wait_until(lambda: True, what="quick", timeout=1, progress=True)
    assert "waiting for quick" in capsys.readouterr().err
