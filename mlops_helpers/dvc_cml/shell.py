"""git and dvc as subprocesses of this environment, with bounded timeouts and clear errors.

DVC runs the project's stage commands (``python src/train.py``) through a shell, so the
environment's bin directory goes first on PATH: a notebook kernel may not have it there.
Remote credentials reach a command only through its environment (``extra_env``), never
its argv or a file; git reads ``GIT_USERNAME``/``GIT_PASSWORD`` through a credential helper.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError

BIN_DIR = Path(sys.executable).parent
DEFAULT_TIMEOUT = 180.0
# reads the values at run time, so they never appear in an argv or a config file
CREDENTIAL_HELPER = ('!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" '
                     '"$GIT_USERNAME" "$GIT_PASSWORD"; }; f')


class CommandFailed(StageError):
    """A git or dvc command exited non-zero; carries its output."""

    def __init__(self, argv: list[str], code: int, output: str) -> None:
        self.argv = argv
        self.code = code
        self.output = output
        shown = [Path(argv[0]).name, *(a for a in argv[1:] if a != "-c"
                                       and not a.startswith("credential.helper"))]
        super().__init__(f"`{' '.join(shown[:4])}` exited with {code}: {self.reason}")

    @property
    def reason(self) -> str:
        """The one line that says why: a Python exception, else DVC's or git's error line."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        for pattern in (r"^[\w.]+(Error|Exception): ", r"^(ERROR|error|fatal):", r"."):
            found = [line for line in lines if re.search(pattern, line)]
            if found:
                return found[-1][:300]
        return "no output"


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
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)  # credentials

    def run(self, argv: list[str], *, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                argv, cwd=self.cwd, env={**environment(), **self.extra_env},
                capture_output=True, text=True,
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

    def git_remote(self, *args: str) -> str:
        """A git command that talks to a remote (fetch, push): credentials from the
        environment when the job provides them (Jenkins ``usernamePassword`` binding)."""
        env = {**os.environ, **self.extra_env}
        helper = (["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}"]
                  if env.get("GIT_USERNAME") and env.get("GIT_PASSWORD") else [])
        return self.run(["git", *helper, *args]).stdout.strip()

    def dvc(self, *args: str, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        return self.run([tool("dvc"), *args], check=check, timeout=timeout)

    def dvc_json(self, *args: str) -> Any:
        """A dvc command with ``--json``; its stdout parsed (empty output is {})."""
        out = self.dvc(*args, "--json").stdout.strip()
        return json.loads(out) if out else {}
