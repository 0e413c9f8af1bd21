"""The checkout the pipeline works on, and the pull request it builds.

Under Jenkins the workspace is ``WORKSPACE`` and the pull request comes from
``CHANGE_ID`` / ``CHANGE_TARGET`` / ``CHANGE_BRANCH`` (and ``CHANGE_FORK`` when it comes
from a fork); elsewhere the same settings are passed as ``-p workspace PATH`` (the notebook
passes its sandbox). Nothing here creates a repository: the workspace is a clone of the
team's repo, made by whoever runs the job, and the pipeline builds exactly the commit that
clone has checked out (GitHub Branch Source: the PR head merged with its target), never a
branch fetched again by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlops_helpers.config import Settings
from mlops_helpers.dvc_cml.shell import CommandFailed, Shell, environment
from mlops_helpers.errors import ConfigError, StageError

SKIP_MARKER = "[skip ci]"  # in CI's own dvc.lock commit; a build of such a head is skipped
CML_TARGET = re.compile(r"^(pr|auto|pr/\d+|commit/[0-9a-f]{7,40})$")


@dataclass(frozen=True)
class PullRequest:
    """Jenkins' change-request variables (multibranch pipelines set them on PR builds)."""

    number: str
    target: str
    branch: str
    fork: str | None = None  # CHANGE_FORK: the branch lives in this fork, not in origin

    @classmethod
    def from_settings(cls, settings: Settings) -> PullRequest | None:
        values = {
            "change_id": settings.change_id,
            "change_target": settings.change_target,
            "change_branch": settings.change_branch,
        }
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
        fork = settings.change_fork
        return cls(
            number,
            str(values["change_target"]),
            str(values["change_branch"]),
            str(fork) if fork else None,
        )

    def describe(self) -> str:
        where = f"{self.fork}:{self.branch}" if self.fork else self.branch
        return f"pull request #{self.number}: {where} -> {self.target}"


def resolve(settings: Settings) -> Path:
    """The workspace: a git repository with a DVC project at its top."""
    raw = settings.workspace
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


def fetch_target(sh: Shell, pr: PullRequest) -> str:
    """Fetch the PR's target branch (what ``compare`` diffs against) as
    ``origin/<target>``. Nothing else: the workspace stays on the commit Jenkins checked out."""
    try:
        refspec = f"+refs/heads/{pr.target}:refs/remotes/origin/{pr.target}"
        sh.git_remote("fetch", "-q", "--no-tags", "origin", refspec)
    except CommandFailed as exc:
        raise StageError(
            f"git fetch of the target '{pr.target}' from origin failed: {exc.reason}; check "
            f"CHANGE_TARGET and the git credentials"
        ) from None
    return sh.git("rev-parse", f"origin/{pr.target}")


def pull_request_head(sh: Shell, pr: PullRequest) -> str:
    """The PR's own head commit: ``origin/PR-<n>`` where Jenkins fetched it (a merge build's
    HEAD is Jenkins' merge of it with the target), else HEAD itself."""
    ref = f"refs/remotes/origin/PR-{pr.number}"
    if sh.run(["git", "rev-parse", "-q", "--verify", ref], check=False).returncode == 0:
        return sh.git("rev-parse", ref)
    return sh.git("rev-parse", "HEAD")


def is_ci_commit(sh: Shell, rev: str = "HEAD") -> bool:
    """``rev`` is a dvc.lock commit CI made (its marker and CI's identity)."""
    author = sh.git("log", "-1", "--format=%ae", rev)
    return (
        SKIP_MARKER in sh.git("log", "-1", "--format=%B", rev)
        and author == environment()["GIT_AUTHOR_EMAIL"]
    )


def triggered_by_ci(sh: Shell, pr: PullRequest | None) -> bool:
    """True only for the build that CI's own push starts: a PR build whose head is CI's
    dvc.lock commit and whose checkout has exactly that content. A branch build never is
    (CI pushes to PR branches only; ``main`` after a fast-forward merge must be built)."""
    if pr is None:
        return False
    head = pull_request_head(sh, pr)
    same_content = sh.git("rev-parse", "HEAD^{tree}") == sh.git("rev-parse", f"{head}^{{tree}}")
    return same_content and is_ci_commit(sh, head)


def cml_target(settings: Settings, pr: PullRequest | None) -> str:
    """``--target`` for ``cml comment create``: the setting, else ``pr/<CHANGE_ID>``."""
    chosen = settings.cml_target or (f"pr/{pr.number}" if pr else "auto")
    if not CML_TARGET.match(str(chosen)):
        raise ConfigError(
            f"cml_target {chosen!r} is not a form CML accepts: pr, pr/<number>, commit/<sha>, auto"
        )
    return str(chosen)
