"""git and dvc from this environment, with bounded timeouts and clear errors.

git always runs as a subprocess; so do ``dvc repro``/``dvc exp run`` (they run the project's
code) and every dvc command that carries credentials. Other dvc commands (status, push and
pull to folders, diffs, and a ``dvc repro`` that only restores from DVC's run-cache) run
DVC's CLI entry point in this process: a new dvc process would spend about a second
importing DVC for each of them.

DVC runs the project's stage commands (``python src/train.py``) through a shell, so the
environment's bin directory goes first on PATH: a notebook kernel may not have it there.
Remote credentials reach a command only through its environment (``extra_env``), never
its argv or a file; git reads ``GIT_USERNAME``/``GIT_PASSWORD`` through a credential helper.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError

BIN_DIR = Path(sys.executable).parent
DEFAULT_TIMEOUT = 180.0
# colorama's saved streams: DVC resets sys.stdout to them around JSON output
COLORAMA_STREAMS = ("orig_stdout", "orig_stderr", "wrapped_stdout", "wrapped_stderr")
# dvc's own options that may come before its command (``dvc --wait-for-lock exp run``)
GLOBAL_FLAGS = ("--wait-for-lock", "-q", "-v")
# reads the values at run time, so they never appear in an argv or a config file
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" '
    '"$GIT_USERNAME" "$GIT_PASSWORD"; }; f'
)


class CommandFailed(StageError):
    """A git or dvc command exited non-zero; carries its output."""

    def __init__(self, argv: list[str], code: int, output: str) -> None:
        self.argv = argv
        self.code = code
        self.output = output
        shown = [
            Path(argv[0]).name,
            *(a for a in argv[1:] if a != "-c" and not a.startswith("credential.helper")),
        ]
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
        GIT_AUTHOR_NAME="workshop-ci",
        GIT_AUTHOR_EMAIL="ci@workshop.invalid",
        GIT_COMMITTER_NAME="workshop-ci",
        GIT_COMMITTER_EMAIL="ci@workshop.invalid",
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

    def run(
        self, argv: list[str], *, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                argv,
                cwd=self.cwd,
                env={**environment(), **self.extra_env},
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout,
                stdin=subprocess.DEVNULL,
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
        helper = (
            ["-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}"]
            if env.get("GIT_USERNAME") and env.get("GIT_PASSWORD")
            else []
        )
        return self.run(["git", *helper, *args]).stdout.strip()

    def dvc(
        self, *args: str, check: bool = True, timeout: float | None = None, from_cache: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """A dvc command. Each ``dvc`` process spends about a second importing DVC, so
        commands that run no project code and carry no credentials run DVC's own CLI
        entry point in this process: same arguments, same output, same exit code.
        ``repro``/``exp run`` (the project's code, bounded by ``timeout``) and anything that
        needs ``extra_env`` (credentials live only in a child's environment) get a process,
        except a ``repro`` the caller knows DVC restores from its run-cache
        (``from_cache``): it checks outputs out and runs no project code."""
        command = tuple(arg for arg in args if arg not in GLOBAL_FLAGS)
        runs_code = (command[:1] == ("repro",) and not from_cache) or command[:2] == ("exp", "run")
        if self.extra_env or runs_code:
            return self.run([tool("dvc"), *args], check=check, timeout=timeout)
        done = _dvc_in_process(self.cwd, list(args))
        if check and done.returncode != 0:
            raise CommandFailed(["dvc", *args], done.returncode, done.stdout + done.stderr)
        return done

    def dvc_json(self, *args: str) -> Any:
        """A dvc command with ``--json``; its stdout parsed (empty output is {})."""
        out = self.dvc(*args, "--json").stdout.strip()
        return json.loads(out) if out else {}


def _dvc_in_process(cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``dvc ARGS`` through ``dvc.cli.main`` in ``cwd`` with the environment a dvc process
    would get; its stdout, stderr and log lines are captured, then everything is put back."""
    from dvc.cli import main

    out, err = io.StringIO(), io.StringIO()
    env, saved_env, saved_cwd = environment(), dict(os.environ), os.getcwd()
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        with _output_to(out, err):
            code = main(args)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["dvc", *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _output_to(out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    """Send everything DVC prints to ``out``/``err``: ``sys.stdout``/``sys.stderr``, its log
    handlers (which keep the streams of import time) and colorama's saved streams (DVC
    turns colorama off and on around JSON output, which resets ``sys.stdout`` to them)."""
    import colorama.initialise as colorama_streams

    handlers = {
        handler
        for name in ("dvc", "dvc_objects", "dvc_data")
        for handler in logging.getLogger(name).handlers
        if isinstance(handler, logging.StreamHandler)
    }
    streams = {
        handler: handler.setStream(err if handler.level >= logging.WARNING else out)
        for handler in handlers
    }
    saved = {name: getattr(colorama_streams, name) for name in COLORAMA_STREAMS}
    for name in COLORAMA_STREAMS:
        setattr(colorama_streams, name, out if name.endswith("stdout") else err)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        for name, stream in saved.items():
            setattr(colorama_streams, name, stream)
        for handler, stream in streams.items():
            handler.setStream(stream)
