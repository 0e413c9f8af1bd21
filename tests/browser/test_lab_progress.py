"""A learner's view: a scenario notebook run in JupyterLab, in a real (headless) Chromium.

JupyterLab runs on 127.0.0.1 with a token, from a temporary folder holding a copy of the
sagemaker_byo notebook cut to its first cells through ``deploy_test``, one wait that lasts
long enough to draw a progress bar, and the cleanup cell (the committed notebook is never
opened, so JupyterLab cannot save outputs into it). The test runs every cell from the
browser, as a learner would, then checks what the page shows: every progress bar is full
and green, none is red or unfinished, no cell failed, and nothing is left running.

Chromium is Debian's (``apt-get install chromium``); Playwright drives it and never
downloads a browser of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from mlops_helpers.paths import notebooks_dir
from mlops_helpers.servers import ManagedServer, http_json, start_server
from mlops_helpers.waiting import wait_until
from tests.support import stop_leftovers

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
NOTEBOOK = "02_sagemaker_byo.ipynb"
SCREENSHOT = "/tmp/browser-lab-progress.png"
LAST_STAGE_CELL = 'run("deploy_test")'
# A wait long enough (over half a second) to draw a bar, which ends when the clock says so.
WAIT_CELL = """\
import time

from mlops_helpers.waiting import wait_until

ready_at = time.monotonic() + 1.5
wait_until(lambda: time.monotonic() >= ready_at, what="a clock 1.5 s ahead", timeout=60,
           interval=0.1, describe=lambda ok: "ready" if ok else "not yet")"""
# Every cell rendered in the page (JupyterLab 4 otherwise only renders what is in view).
LAB_SETTINGS = {"@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
                "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
                "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                                "checkForUpdates": False}}


def _notebook_for_the_browser(target: Path) -> int:
    """The scenario's first cells through ``deploy_test``, a wait, and its cleanup cell;
    returns how many code cells it has."""
    nb = nbformat.read(notebooks_dir() / NOTEBOOK, as_version=4)
    last = next((i for i, c in enumerate(nb.cells) if LAST_STAGE_CELL in c.source), None)
    assert last is not None, f"{NOTEBOOK} has no cell with {LAST_STAGE_CELL}"
    cleanup = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert "cleanup" in cleanup.source
    nb.cells = [*nb.cells[: last + 1], nbformat.v4.new_code_cell(WAIT_CELL), cleanup]
    nbformat.write(nb, target)
    return sum(c.cell_type == "code" for c in nb.cells)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[ManagedServer, str, Path]]:
    """JupyterLab on a free loopback port; stopped, with everything it started."""
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium: apt-get install chromium (.ci/run does it on CI)")
    root, runs, home = tmp_path / "lab", tmp_path / "runs", tmp_path / "home"
    (root / "notebooks").mkdir(parents=True)
    settings = home / "lab-settings"
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.split(":")
        path = settings / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token = secrets.token_hex(16)
    env = {"JUPYTER_TOKEN": token, "MLOPS_RUN_ROOT": str(runs), "MLOPS_ATTENDEE": "browser",
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "IPYTHONDIR": str(home / "ipython")}
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port={port}", f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    server = start_server("jupyterlab", argv, run_dir=tmp_path, env=env,
                          health_path=f"/api/status?token={token}", timeout=180)
    try:
        yield server, token, root
    finally:
        server.stop()
    assert stop_leftovers(str(runs)) == [], "the notebook left processes running"


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


def _kernel_states(server: ManagedServer, token: str) -> list[str]:
    status, sessions = http_json("GET", f"{server.url}/api/sessions?token={token}")
    assert status == 200, sessions
    return [s["kernel"]["execution_state"] for s in sessions]


def _wait_for_an_idle_kernel(page: Any, server: ManagedServer, token: str) -> None:
    """The notebook's kernel has started. On a slow machine JupyterLab may ask which kernel
    to start before it has the kernel list; the answer is its proposal (Python 3)."""
    def probe() -> list[str]:
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.click()
        return _kernel_states(server, token)

    wait_until(probe, what="the notebook's kernel", timeout=180, interval=0.5,
               until=lambda states: states == ["idle"], describe=str, progress=False)


def test_a_scenario_notebook_in_jupyterlab_leaves_only_green_bars(
        lab: tuple[ManagedServer, str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    server, token, root = lab
    code_cells = _notebook_for_the_browser(root / "notebooks" / NOTEBOOK)
    profile = root.parent / "chromium-profile"
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            _wait_for_an_idle_kernel(page, server, token)
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
                }""", timeout=240_000, polling=500)
            state = _page_state(page)
        finally:
            page.screenshot(path=SCREENSHOT, full_page=True)  # to look at, pass or fail
            browser.close()
    assert state["tracebacks"] == 0, f"a cell failed; see {SCREENSHOT}"
    assert len(state["prompts"]) == code_cells
    assert all(p.startswith("[") and p[1:-2].isdigit() for p in state["prompts"]), state
    bars = state["bars"]
    assert bars, "the wait cell drew no progress bar"
    red = [b for b in bars if "danger" in b["classes"]]
    unfinished = [b for b in bars if b["visible"] and
                  ("success" not in b["classes"] or b["width"] != "100%")]
    assert red == [] and unfinished == [], bars
    assert any("done: a clock 1.5 s ahead" in b["text"] and "last status: ready" in b["text"]
               for b in bars), bars
