"""The room as people see it, in a real headless Chromium: an attendee signs in, opens a
scenario notebook in their JupyterLab and runs it; the instructor then sees that attendee's
progress on the room page.

The notebook is sagemaker_byo cut to its first stages through ``deploy_test``, one wait that
lasts long enough to draw a progress bar, and its closing teardown, saved next to the
attendee's copy of the lesson (the lesson itself is never opened, so JupyterLab cannot save
outputs into it). The attendee runs every cell from the browser, as a learner would; the
page then shows every progress bar full and green, none red or unfinished, no cell failed,
and nothing the notebook started is left running.

Chromium is Debian's (``apt-get install chromium``); Playwright drives it and never downloads
a browser of its own."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest
import requests

from mlops_helpers.room.hub import Room
from mlops_helpers.room.remote import Attendee
from mlops_helpers.room.watch import room_processes_by_attendee
from mlops_helpers.waiting import wait_until
from tests.fixtures.room import INSTRUCTOR_CODE, WORKSHOP_CODE, own_password
from tests.room.first_stages import first_stages

pytestmark = [
    pytest.mark.room,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("room"),
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# One of test_room's attendees (on sagemaker_byo), whose server is already up when that file
# ran first (a server is not started twice); alone, signing in starts it.
LEARNER = "att1"
LESSON = "mlops-workshop/notebooks/02_sagemaker_byo.ipynb"
NOTEBOOK = "mlops-workshop/notebooks/02_sagemaker_byo-in-the-browser.ipynb"
LAST_STAGE = "deploy_test"
STAGES_DONE = ["build", "train", "train_status", "deploy_test", "teardown"]
# A wait long enough (over half a second) to draw a bar, which ends when the clock says so.
WAIT_CELL = """\
import time

from mlops_helpers.waiting import wait_until

ready_at = time.monotonic() + 1.5
wait_until(lambda: time.monotonic() >= ready_at, what="a clock 1.5 s ahead", timeout=60,
           interval=0.1, describe=lambda ok: "ready" if ok else "not yet")"""
# An exercise's check cell: its verdict reaches the room page through the run folder.
CHECK_CELL = """\
from mlops_helpers.exercises import check

check("sagemaker_byo", 1)"""
# Every cell rendered in the page (JupyterLab 4 otherwise only renders what is in view), and
# no autosave: what the learner's settings editor would store.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium: apt-get install chromium (.ci/run does it on CI)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def person(browser: Any) -> Any:
    """A browser window of one's own: separate cookies, so a separate sign-in."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(180_000)
    return page


def sign_in(page: Any, url: str, name: str, code: str, then: str = "") -> None:
    """The hub's sign-in form; ``then`` is where to go afterwards (the hub's ``next``)."""
    page.goto(f"{url}/hub/login" + (f"?next={quote(then)}" if then else ""))
    page.fill("#username_input", name)
    page.fill("#password_input", code)
    page.click("#login_submit")


def prepare_the_notebook(learner: Attendee) -> int:
    """Save the learner's lab settings and the cut notebook through their server's APIs;
    returns how many code cells the notebook has."""
    for plugin, values in LAB_SETTINGS.items():
        saved = requests.put(
            f"{learner.server_url}/lab/api/settings/{plugin}",
            headers={"Authorization": f"token {learner.token}"},
            json={"raw": json.dumps(values)},
            timeout=60,
        )
        assert saved.status_code == 204, (plugin, saved.status_code, saved.text[:200])
    notebook = first_stages(learner.notebook(LESSON), LAST_STAGE, [WAIT_CELL, CHECK_CELL])
    learner.save_notebook(NOTEBOOK, notebook)
    return sum(c["cell_type"] == "code" for c in notebook["cells"])


def _page_state(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => {
        const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
        const bars = [...document.querySelectorAll('.jp-Notebook .widget-hprogress')]
            .map(w => {
                const bar = w.querySelector('.progress-bar');
                const row = w.closest('.widget-hbox') || w;
                return {classes: bar ? bar.className : '', width: bar ? bar.style.width : '',
                        visible: getComputedStyle(row).visibility !== 'hidden',
                        text: row.innerText.replace(/\\u2007/g, ' ').trim()};
            });
        return {
            prompts: cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).innerText),
            tracebacks: [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')]
                .filter(o => o.innerText.includes('Traceback (most recent call last)')).length,
            bars: bars,
        };
    }""")


def _wait_for_an_idle_kernel(page: Any, learner: Attendee) -> None:
    """The notebook's kernel has started. On a slow machine JupyterLab may ask which kernel
    to start before it has the kernel list; the answer is its proposal (Python 3)."""

    def probe() -> list[str]:
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.click()
        sessions = learner.server_api("GET", "sessions")
        assert sessions.status_code == 200, sessions.text[:200]
        return [s["kernel"]["execution_state"] for s in sessions.json()]

    wait_until(
        probe,
        what="the notebook's kernel",
        timeout=180,
        interval=0.3,
        until=lambda states: states == ["idle"],
        describe=str,
        progress=False,
    )


def _started_by_the_notebook(room: Room) -> list[str]:
    """The learner's processes other than their server and its kernel."""
    found = []
    for name, proc in room_processes_by_attendee(room.spec.room_dir):
        try:
            command = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if name == LEARNER and not (
            "jupyterhub-singleuser" in command or "ipykernel_launcher" in command
        ):
            found.append(command)
    return found


def test_attendee_runs_first_stages_and_instructor_sees_them(
    room: Room, browser: Any, tmp_path: Path
) -> None:
    learner = Attendee(
        room.url, LEARNER, own_password(LEARNER), WORKSHOP_CODE
    )  # the script's side: settings, notebook
    learner.sign_in()
    learner.start_server()  # after test_room it is up, and this only gives the API token
    code_cells = prepare_the_notebook(learner)

    page = person(browser)  # the attendee's side: sign in, land in Lab on the notebook
    sign_in(
        page, room.url, LEARNER, own_password(LEARNER), then=f"/user/{LEARNER}/lab/tree/{NOTEBOOK}"
    )
    page.wait_for_url(f"**/user/{LEARNER}/lab/tree/**")
    try:
        page.wait_for_selector(".jp-Notebook .jp-CodeCell")
        _wait_for_an_idle_kernel(page, learner)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # done when no cell is queued or running ("[*]:") and the kernel is idle again
        page.wait_for_function(
            """() => {
                const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell '
                                                        + '.jp-InputArea-prompt')];
                const idle = document.querySelector(
                    ".jp-Notebook-ExecutionIndicator[data-status='idle']");
                return idle && p.length > 0 && /^\\[\\d+\\]:$/.test(p[0].innerText)
                    && p.every(e => !e.innerText.includes('*'));
            }""",
            timeout=240_000,
            polling=300,
        )
        state = _page_state(page)
    finally:
        page.screenshot(path=str(tmp_path / "attendee.png"), full_page=True)  # pass or fail
    assert state["tracebacks"] == 0, f"a cell failed; see {tmp_path / 'attendee.png'}"
    assert len(state["prompts"]) == code_cells
    assert all(p.startswith("[") and p[1:-2].isdigit() for p in state["prompts"]), state
    bars = state["bars"]
    assert bars, "the wait cell drew no progress bar"
    red = [b for b in bars if "danger" in b["classes"]]
    unfinished = [
        b for b in bars if b["visible"] and ("success" not in b["classes"] or b["width"] != "100%")
    ]
    assert red == [] and unfinished == [], bars
    assert any(
        "done: a clock 1.5 s ahead" in b["text"] and "last status: ready" in b["text"] for b in bars
    ), bars
    wait_until(
        lambda: _started_by_the_notebook(room),
        what="the notebook's servers to end",
        timeout=15,
        interval=0.2,
        until=lambda left: left == [],
        describe=str,
        progress=False,
    )

    teacher = person(browser)
    sign_in(teacher, room.url, "teacher", INSTRUCTOR_CODE)
    teacher.wait_for_url("**/services/room/")  # instructors land on the room page
    row = teacher.locator(f"tr[data-attendee='{LEARNER}']")
    row.wait_for()
    teacher.wait_for_function(
        f"() => document.querySelectorAll(\"tr[data-attendee='{LEARNER}'] "
        f"td[data-status='done']\").length >= {len(STAGES_DONE)}"
    )
    teacher.screenshot(path=str(tmp_path / "instructor.png"), full_page=True)
    assert row.locator("td[data-status='done']").count() == len(STAGES_DONE)
    assert row.locator("td[data-status='failed']").count() == 0
    assert row.locator("td.server[data-state='running']").count() == 1  # the hub's word
    exercises = row.locator("td.exercises[data-scenario='sagemaker_byo']")  # the check cell's
    assert exercises.get_attribute("data-done") == "0/2"
    assert "1 Make the smoke test refuse the model: not yet (" in exercises.get_attribute("title")

    for session in learner.server_api("GET", "sessions").json():  # close the notebook's kernel
        assert learner.server_api("DELETE", f"sessions/{session['id']}").status_code == 204
