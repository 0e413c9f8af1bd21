"""The checkout the pipeline works on, and the pull request it builds.

Under Jenkins the workspace is ``WORKSPACE`` and the pull request comes from
``CHANGE_ID`` / ``CHANGE_TARGET`` / ``CHANGE_BRANCH``; elsewhere the same settings are
passed as ``-p workspace PATH`` (the notebook passes its sandbox). Nothing here creates a
repository: the workspace is a clone of the team's repo, made by whoever runs the job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlops_helpers.config import Settings
from mlops_helpers.dvc_cml.shell import CommandFailed, Shell
from mlops_helpers.errors import ConfigError, StageError

SKIP_MARKER = "[skip ci]"  # in CI's own dvc.lock commit; a build of such a head is skipped
CML_TARGET = re.compile(r"^(pr|auto|pr/\d+|commit/[0-9a-f]{7,40})$")


@dataclass(frozen=True)
class PullRequest:
    """Jenkins' change-request variables (multibranch pipelines set them on PR builds)."""

    number: str
    target: str
    branch: str

    @classmethod
    def from_settings(cls, settings: Settings) -> PullRequest | None:
        values = {key: settings.get(key) for key in ("change_id", "change_target", "change_branch")}
        if not any(values.values()):
            return None
        missing = [key.upper() for key, value in values.items() if not value]
        if missing:
            raise ConfigError(
                f"a pull-request build needs CHANGE_ID, CHANGE_TARGET and "
                f"CHANGE_BRANCH; {', '.join(missing)} is not set"
            )
        number = str(values["change_id"])
        if not number.isdigit():
            raise ConfigError(f"CHANGE_ID must be the pull request's number, got {number!r}")
        return cls(number, str(values["change_target"]), str(values["change_branch"]))


def resolve(settings: Settings) -> Path:
    """The workspace: a git repository with a DVC project at its top."""
    raw = settings.get("workspace")
    if not raw:
        raise ConfigError(
            "no workspace: run under Jenkins (it sets WORKSPACE), or pass "
            "-p workspace PATH to a clone of your DVC project (the notebook "
            "creates a sandbox project for you)"
        )
    path = Path(str(raw)).expanduser().resolve()
    for needed, what in (
        (".git", "a git checkout"),
        (".dvc", "a DVC project (dvc init)"),
        ("dvc.yaml", "a DVC pipeline"),
    ):
        if not (path / needed).exists():
            raise ConfigError(f"workspace {path} is not {what}: {needed} is missing")
    return path


def target_rev(sh: Shell, target: str) -> str:
    """The target branch as origin has it (a CI clone may have no local branch of it)."""
    remote = f"refs/remotes/origin/{target}"
    if sh.run(["git", "rev-parse", "-q", "--verify", remote], check=False).returncode == 0:
        return f"origin/{target}"
    return target


def checkout_pull_request(sh: Shell, pr: PullRequest) -> str:
    """Fetch the target and the PR branch; put the workspace on the PR head (a local branch
    named like the PR branch, which Jenkins' merge or detached checkout is not)."""
    try:
        sh.git_remote(
            "fetch",
            "-q",
            "origin",
            f"+refs/heads/{pr.target}:refs/remotes/origin/{pr.target}",
            f"+refs/heads/{pr.branch}:refs/remotes/origin/{pr.branch}",
        )
    except CommandFailed as exc:
        raise StageError(
            f"git fetch of '{pr.target}' and '{pr.branch}' from origin failed: "
            f"{exc.reason}; check CHANGE_TARGET/CHANGE_BRANCH and the git "
            f"credentials"
        ) from None
    sh.git("checkout", "-q", "-B", pr.branch, f"origin/{pr.branch}")
    return sh.git("rev-parse", "HEAD")


def head_message(sh: Shell) -> str:
    return sh.git("log", "-1", "--format=%B")


def is_ci_commit(sh: Shell) -> bool:
    """True when HEAD is CI's own dvc.lock commit: building it again would loop."""
    return SKIP_MARKER in head_message(sh)


def cml_target(settings: Settings, pr: PullRequest | None) -> str:
    """``--target`` for ``cml comment create``: the setting, else ``pr/<CHANGE_ID>``."""
    chosen = settings.get("cml_target") or (f"pr/{pr.number}" if pr else "auto")
    if not CML_TARGET.match(str(chosen)):
        raise ConfigError(
            f"cml_target {chosen!r} is not a form CML accepts: pr, pr/<number>, commit/<sha>, auto"
        )
    return str(chosen)
