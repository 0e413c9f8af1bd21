"""``make lab``: JupyterLab at the project root with the notebooks in front."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlops_helpers.paths import project_root
from mlops_helpers.servers import http_json, start_server

pytestmark = pytest.mark.slow
ROOT = project_root()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # let the 302 through, to read where it points


def test_make_lab_serves_the_project_root_with_notebooks_in_front(tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    extra = (
        f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={{port}} "
        f"--IdentityProvider.token={token} --LabApp.workspaces_dir={tmp_path / 'ws'}"
    )
    # the recipe exactly as make would run it (install is taken as done: -o install)
    recipe = subprocess.run(
        ["make", "-n", "-o", "install", "lab", f"LAB_ARGS={extra}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    env = {
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    server = start_server(
        "make-lab",
        ["bash", "-c", recipe.stdout],
        run_dir=tmp_path,
        cwd=ROOT,
        env=env,
        health_path=f"/api/status?token={token}",
        timeout=180,
    )
    try:
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(f"{server.url}/?token={token}", timeout=30)
            location = ""
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location", "")
        assert location.startswith("/lab/tree/notebooks"), location
        # no news pop-up: the announcements plugin is disabled in the page's configuration
        with urllib.request.urlopen(f"{server.url}/lab?token={token}", timeout=30) as page:
            html = page.read().decode()
        found = re.search(r'<script id="jupyter-config-data"[^>]*>(.*?)</script>', html, re.S)
        assert found, "no page configuration in /lab"
        disabled = json.loads(found.group(1)).get("disabledExtensions", [])
        assert "@jupyterlab/apputils-extension:announcements" in disabled, disabled
        for folder in ("notebooks", "scenarios", "lambdas", "cloudformation"):
            status, body = http_json("GET", f"{server.url}/api/contents/{folder}?token={token}")
            assert status == 200 and body["type"] == "directory", (folder, status)
    finally:
        server.stop()
    log = server.log_path.read_text()
    if os.geteuid() == 0:
        assert "running as root (a container?), so JupyterLab starts with --allow-root" in log
