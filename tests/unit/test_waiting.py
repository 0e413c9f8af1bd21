from __future__ import annotations

import itertools

import pytest

from mlops_helpers.errors import StageError, WaitTimeout
from mlops_helpers.waiting import wait_until


def test_returns_first_value_that_passes() -> None:
    counter = itertools.count()
    assert (
        wait_until(
            lambda: next(counter), what="counter", timeout=5, interval=0.01, until=lambda v: v >= 3
        )
        == 3
    )


def test_timeout_names_resource_seconds_and_last_status() -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_until(
            lambda: "Creating",
            what="endpoint sm-test-jd",
            timeout=0.3,
            interval=0.05,
            until=lambda s: s == "InService",
            describe=str,
        )
    message = str(info.value)
    assert "endpoint sm-test-jd" in message
    assert "last status: Creating" in message
    assert info.value.waited >= 0.3
    assert "timed out after 0.3" in message or "timed out after 0.4" in message


def test_ignored_exceptions_become_the_status() -> None:
    def probe() -> bool:
        raise ConnectionRefusedError("refused")

    with pytest.raises(WaitTimeout, match="ConnectionRefusedError: refused"):
        wait_until(
            probe, what="server", timeout=0.2, interval=0.05, ignore=(ConnectionRefusedError,)
        )


def test_other_exceptions_propagate() -> None:
    def probe() -> bool:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        wait_until(probe, what="x", timeout=1, interval=0.05)


def test_fail_if_stops_at_once() -> None:
    with pytest.raises(StageError, match="training job: job failed .*Failed"):
        wait_until(
            lambda: "Failed",
            what="training job",
            timeout=30,
            interval=0.05,
            until=lambda s: s == "Completed",
            describe=str,
            fail_if=lambda s: "job failed" if s == "Failed" else None,
        )


def test_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        wait_until(lambda: True, what="x", timeout=0)


def test_an_instant_wait_leaves_no_bar(capsys: pytest.CaptureFixture[str]) -> None:
    wait_until(lambda: True, what="quick", timeout=1, progress=True)
    assert capsys.readouterr().err == ""


def _counter_to(n: int):  # a probe that is ready on its n-th call
    counter = itertools.count(1)
    return lambda: next(counter)


def test_a_successful_wait_ends_with_a_full_bar(capsys: pytest.CaptureFixture[str]) -> None:
    wait_until(
        _counter_to(8),
        what="counter",
        timeout=30,
        interval=0.1,
        until=lambda v: v >= 8,
        describe=str,
        progress=True,
    )
    final = capsys.readouterr().err.split("\r")[-1]
    assert final.startswith("done: counter |██████████| ")
    assert "last status: 8" in final and " s, " in final
    assert "\x1b[31m" not in final  # not red


def test_a_timeout_ends_red_and_says_failed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WaitTimeout):
        wait_until(
            lambda: "Creating {x}",
            what="endpoint",
            timeout=0.8,
            interval=0.1,
            until=lambda s: s == "InService",
            describe=str,
            progress=True,
        )
    final = capsys.readouterr().err.split("\r")[-1]
    assert final.startswith("FAILED: endpoint |\x1b[31m")
    assert "last status: Creating {x}" in final


WIDGET_CELL = """
import itertools
from mlops_helpers.errors import WaitTimeout
from mlops_helpers.waiting import wait_until
counter = itertools.count(1)
wait_until(lambda: next(counter), what="counter", timeout=30, interval=0.1,
           until=lambda v: v >= 8, describe=str)
try:
    wait_until(lambda: "Creating", what="endpoint", timeout=0.8, interval=0.1,
               until=lambda s: s == "InService", describe=str)
except WaitTimeout:
    pass
wait_until(lambda: True, what="instant", timeout=5)
"""


def test_in_a_notebook_the_widget_is_green_on_success_red_on_timeout() -> None:
    """tqdm's notebook widget as a kernel really draws it: the widget state nbclient saves
    holds each bar's style, value and max."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(WIDGET_CELL)]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    texts = " ".join(
        m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"
    ).replace("\u2007", " ")
    assert [b["bar_style"] for b in bars] == ["success", "danger"]  # none for "instant"
    assert bars[0]["value"] == bars[0]["max"]  # full, not "0.9 of 30"
    assert "done: counter" in texts and "FAILED: endpoint" in texts
    assert "last status: 8" in texts and "last status: Creating" in texts
