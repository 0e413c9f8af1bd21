"""git and dvc as subprocesses of this environment, with bounded timeouts and clear errors.

DVC runs the project's stage commands (``python src/train.py``) through a shell, so the
environment's bin directory goes first on PATH: a notebook kernel may not have it there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError

BIN_DIR = Path(sys.executable).parent
DEFAULT_TIMEOUT = 180.0


class CommandFailed(StageError):
    """A git or dvc command exited non-zero; carries its output."""

    def __init__(self, argv: list[str], code: int, output: str) -> None:
        self.argv = argv
        self.code = code
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-12:])
        super().__init__(f"`{' '.join(argv)}` exited with {code}:\n{tail}")


def tool(name: str) -> str:
    """The executable of this environment (dvc, ruff), else the one on PATH."""
    local = BIN_DIR / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise StageError(f"'{name}' is not installed: pip install 'mlops-workshop[dvc]'")
    return found


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="workshop-ci", GIT_AUTHOR_EMAIL="ci@workshop.invalid",
        GIT_COMMITTER_NAME="workshop-ci", GIT_COMMITTER_EMAIL="ci@workshop.invalid",
        GIT_TERMINAL_PROMPT="0",
        NO_COLOR="1",  # plain text in logs and notebook outputs
    )
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHONPATH", None)  # the project's scripts must not see the workshop's paths
    return env


@dataclass
class Shell:
    """Runs commands in one directory (a git + DVC working repo)."""

    cwd: Path
    timeout: float = DEFAULT_TIMEOUT

    def run(self, argv: list[str], *, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                argv, cwd=self.cwd, env=environment(), capture_output=True, text=True,
                timeout=timeout or self.timeout, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise StageError(
                f"`{' '.join(argv)}` did not finish within {exc.timeout:.0f}s in {self.cwd}"
            ) from exc
        if check and done.returncode != 0:
            raise CommandFailed(argv, done.returncode, done.stdout + done.stderr)
        return done

    def git(self, *args: str, check: bool = True) -> str:
        return self.run(["git", *args], check=check).stdout.strip()

    def dvc(self, *args: str, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        return self.run([tool("dvc"), *args], check=check, timeout=timeout)

    def dvc_json(self, *args: str) -> Any:
        """A dvc command with ``--json``; its stdout parsed (empty output is {})."""
        out = self.dvc(*args, "--json").stdout.strip()
        return json.loads(out) if out else {}
