"""The repositories a multibranch job builds from: a bare ``origin`` (with a PR branch, in
a fork or not) made from a source tree, and the workspace checkouts the Git plugin and
GitHub Branch Source make of a branch or of a pull request (``refs/pull/<id>/head``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_IGNORED_IN_TREES = (
    ".git",
    ".venv",
    ".venvs",
    ".tools",
    "build",
    "runs",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    ".env",
    "node_modules",
    ".dvc/cache",
    ".dvc/tmp",
)


@dataclass(frozen=True)
class Origin:
    """A bare repository standing in for the hosted one: a target branch and a PR branch.

    ``fork`` set: the PR branch lives in ``fork_path``, the fork of the repository that
    the user ``fork`` owns (``CHANGE_FORK``), not in ``path``; its name may even be the
    target's (``main``)."""

    path: Path
    target_branch: str = "main"
    pr_branch: str | None = "feature"
    fork: str | None = None
    fork_path: Path | None = None

    @property
    def url(self) -> str:
        return str(self.path)

    @property
    def pr_repository(self) -> Path:
        """Where the PR branch lives: the fork, or the repository itself."""
        return self.fork_path if self.fork_path is not None else self.path


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Jenkins Test",
            "-c",
            "user.email=jenkins@example.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}:\n{done.stderr}")
    return done.stdout.strip()


def project_tree() -> Path:
    """This project's checkout: the repository the scenarios' Jenkinsfiles live in."""
    return Path(__file__).resolve().parents[2]


def _source_files(source: Path, ignore: tuple[str, ...]) -> list[str]:
    """What a commit of ``source`` would hold now: in a git work tree, tracked and untracked
    files that are not ignored; elsewhere every file outside the ``ignore`` patterns."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        timeout=60,
    )
    if listed.returncode == 0:
        names = [n for n in listed.stdout.decode().split("\0") if n]
    else:
        names = [str(p.relative_to(source)) for p in source.rglob("*")]
    return [
        n
        for n in names
        if not any(fnmatch.fnmatch(part, pattern) for part in Path(n).parts for pattern in ignore)
    ]


def _copy_tree(source: Path, target: Path, ignore: tuple[str, ...]) -> None:
    """Copy regular files and symlinks (never sockets or pipes a running kernel left); a file
    that vanishes while we copy (someone is editing the tree) is skipped."""
    target.mkdir(parents=True)
    for name in _source_files(source, ignore):
        src, dst = source / name, target / name
        try:
            mode = src.lstat().st_mode
        except FileNotFoundError:
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(mode):
                dst.symlink_to(os.readlink(src))
            else:
                shutil.copy2(src, dst)


def make_origin(
    source: Path,
    bare: Path,
    *,
    target_branch: str = "main",
    pr_branch: str | None = "feature",
    change_pr: Callable[[Path], None] | None = None,
    ignore: Iterable[str] = _IGNORED_IN_TREES,
    fork: str | None = None,
) -> Origin:
    """A bare repository at ``bare`` whose ``target_branch`` holds ``source`` as a commit of
    it would now (in a git work tree: tracked and untracked-but-not-ignored files, so the
    shared tree's uncommitted edits are in; never virtualenvs, caches, runs or ``.env``) and
    whose ``pr_branch`` adds one commit on top, made by ``change_pr(tree)`` (empty if None).
    ``pr_branch=None``: a repository with the target branch only. ``fork``: the PR branch
    is pushed to a fork owned by that user (``<bare>-<fork>.git``), never to ``bare``."""
    seed = bare.parent / f"{bare.name}.seed"
    _copy_tree(source, seed, tuple(ignore))
    _git(seed, "init", "-q", "-b", target_branch)
    _git(seed, "add", "-A")
    _git(seed, "commit", "-q", "--allow-empty", "-m", "initial import")
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git(bare.parent, "init", "-q", "--bare", str(bare))
    _git(seed, "push", "-q", str(bare), f"refs/heads/{target_branch}")
    fork_path = None
    if pr_branch:
        pr_repository = bare
        if fork:  # the fork starts as a copy of the repository
            fork_path = bare.parent / f"{bare.name.removesuffix('.git')}-{fork}.git"
            _git(bare.parent, "init", "-q", "--bare", str(fork_path))
            _git(seed, "push", "-q", str(fork_path), f"refs/heads/{target_branch}")
            pr_repository = fork_path
        if pr_branch != target_branch:
            _git(seed, "checkout", "-q", "-b", pr_branch)
        if change_pr is not None:
            change_pr(seed)
        _git(seed, "add", "-A")
        _git(seed, "commit", "-q", "--allow-empty", "-m", f"change on {pr_branch}")
        _git(seed, "push", "-q", "-f", str(pr_repository), f"HEAD:refs/heads/{pr_branch}")
    shutil.rmtree(seed)
    return Origin(bare, target_branch, pr_branch, fork, fork_path)


def _open_pull_request(origin: Origin, change_id: int) -> str:
    """What GitHub does for every pull request, from a fork or not: ``refs/pull/<id>/head``
    in the base repository is the PR branch's head. Returns that commit."""
    if origin.pr_branch is None:
        raise ValueError("a PR build needs an origin with a pr_branch")
    ref = f"refs/pull/{change_id}/head"
    _git(
        origin.path,
        "fetch",
        "-q",
        str(origin.pr_repository),
        f"+refs/heads/{origin.pr_branch}:{ref}",
    )
    return _git(origin.path, "rev-parse", ref)


def _workspace_repo(origin: Origin, workspace: Path) -> None:
    if not (workspace / ".git").is_dir():
        workspace.mkdir(parents=True, exist_ok=True)
        _git(workspace, "init", "-q")
        _git(workspace, "remote", "add", "origin", origin.url)


def checkout(origin: Origin, workspace: Path, branch: str) -> str:
    """Clone (or fetch into) ``workspace`` and check out ``branch``'s head on a detached HEAD,
    as the Git plugin does (only that branch is fetched: GitHub Branch Source's narrow
    refspec); untracked files of an earlier build stay. Returns the commit."""
    _workspace_repo(origin, workspace)
    refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
    _git(workspace, "fetch", "-q", "--no-tags", "origin", refspec)
    commit = _git(workspace, "rev-parse", f"refs/remotes/origin/{branch}^{{commit}}")
    _git(workspace, "checkout", "-q", "-f", commit)
    return commit


def checkout_pull_request(
    origin: Origin, workspace: Path, change_id: int, strategy: str = "merge"
) -> str:
    """A PR build's checkout, as GitHub Branch Source does it: fetch ``refs/pull/<id>/head``
    (as ``origin/PR-<id>``) and the target branch, check the PR head out on a detached HEAD,
    and with the default ``merge`` strategy merge the target into it (Jenkins' own merge
    commit; none when the PR already contains the target). ``strategy="head"``: the PR head
    as it is. A fork's PR comes the same way: its branch is never fetched by name."""
    head = _open_pull_request(origin, change_id)
    _workspace_repo(origin, workspace)
    pr_ref, target = f"refs/remotes/origin/PR-{change_id}", origin.target_branch
    _git(
        workspace,
        "fetch",
        "-q",
        "--no-tags",
        "origin",
        f"+refs/pull/{change_id}/head:{pr_ref}",
        f"+refs/heads/{target}:refs/remotes/origin/{target}",
    )
    _git(workspace, "checkout", "-q", "-f", head)
    if strategy == "merge":
        _git(workspace, "merge", "-q", "--no-edit", f"refs/remotes/origin/{target}")
    elif strategy != "head":
        raise ValueError(f"strategy {strategy!r} is not one of 'merge', 'head'")
    return _git(workspace, "rev-parse", "HEAD")
