"""The room as people see it, in a real headless Chromium: an attendee signs in, opens a
scenario notebook in JupyterLab and runs its first stages; the instructor then sees that
attendee's progress on the room page."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_helpers.room.hub import Room
from tests.room.conftest import INSTRUCTOR_CODE, WORKSHOP_CODE

pytestmark = [pytest.mark.room, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.xdist_group("room-browser")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = "mlops-workshop/notebooks/02_sagemaker_byo.ipynb"
FIRST_STAGES_CELL = 9  # parameters .. `run("train")`: two stages, one of them with a wait


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: .ci/run installs it"
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def person(browser: object) -> object:
    """A browser window of one's own: separate cookies, so a separate sign-in."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(180_000)
    return page


def sign_in(page: object, url: str, name: str, code: str) -> None:
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", code)
    page.click("#login_submit")


def test_attendee_runs_first_stages_and_instructor_sees_them(
        room: Room, browser: object, tmp_path: Path) -> None:
    page = person(browser)
    sign_in(page, room.url, "learner", WORKSHOP_CODE)
    page.wait_for_url("**/user/learner/lab**")  # the hub started the server, JupyterLab opened
    page.goto(f"{room.url}/user/learner/lab/tree/{NOTEBOOK}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    status = page.locator(".jp-StatusBar-Widget", has_text="Idle").first
    status.wait_for()  # the kernel is up
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.nth(0).click()
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and moves on
    for index in range(FIRST_STAGES_CELL + 1):
        page.keyboard.press("Shift+Enter")
        page.wait_for_function(  # the notebook moved on to the next cell
            "n => document.querySelectorAll('.jp-Notebook .jp-Cell')[n]"
            ".classList.contains('jp-mod-active')", arg=index + 1)
    last_prompt = cells.nth(FIRST_STAGES_CELL).locator(".jp-InputPrompt")
    page.wait_for_function(  # "[7]:" rather than "[*]:" or "[ ]:"
        "el => /\\[\\d+\\]/.test(el.innerText)", arg=last_prompt.element_handle(),
        timeout=300_000)
    status.wait_for()
    page.screenshot(path=str(tmp_path / "attendee.png"))
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).filter(has_text="Traceback").count() == 0

    teacher = person(browser)
    sign_in(teacher, room.url, "teacher", INSTRUCTOR_CODE)
    teacher.wait_for_url("**/services/room/")  # instructors land on the room page
    row = teacher.locator("tr[data-attendee='learner']")
    row.wait_for()
    teacher.wait_for_function(
        "() => document.querySelectorAll(\"tr[data-attendee='learner'] td[data-status='done']\")"
        ".length >= 2")
    teacher.screenshot(path=str(tmp_path / "instructor.png"), full_page=True)
    done = row.locator("td[data-status='done']").count()
    assert done >= 2  # build and train of sagemaker_byo
    assert row.locator("td[data-status='failed']").count() == 0
