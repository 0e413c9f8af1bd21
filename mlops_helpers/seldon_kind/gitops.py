"""The GitOps repository: a real git repo whose remote is a bare repo, one folder per
environment (``staging/``, ``production/``) holding its SeldonDeployment manifests.

CI pushes to ``main`` for staging; a production change travels on its own branch with a
description file and reaches ``main`` only through :meth:`GitOpsRepo.merge_change`, which
records the approver in the merge commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlops_helpers.errors import StageError

ENVIRONMENTS = ("staging", "production")
MAIN = "main"
CI_NAME, CI_EMAIL = "workshop-ci", "ci@workshop.invalid"
GIT_TIMEOUT_S = 60


class GitError(StageError):
    """A git command failed; carries its output."""


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str

    @property
    def short(self) -> str:
        return self.sha[:8]


class GitOpsRepo:
    def __init__(self, root: Path, remote: str | None = None) -> None:
        self.root = Path(root)
        self.work = self.root / "work"
        self.remote = remote or str(self.root / "remote.git")

    # -- plumbing ---------------------------------------------------------------------
    def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        who: tuple[str, str] | None = None,
        check: bool = True,
        strip: bool = True,
    ) -> str:
        name, email = who or (CI_NAME, CI_EMAIL)
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd or self.work,
                env=env,
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"`git {' '.join(args)}` took more than {GIT_TIMEOUT_S}s") from exc
        if check and done.returncode != 0:
            raise GitError(f"`git {' '.join(args)}` failed: {(done.stderr or done.stdout)[-800:]}")
        return done.stdout.strip() if strip else done.stdout

    def _remote_git(self, *args: str, check: bool = True, strip: bool = True) -> str:
        """Read the remote directly: what a reconciler (Argo CD) sees."""
        return self._git(f"--git-dir={self.remote}", *args, cwd=self.root, check=check, strip=strip)

    # -- setup ------------------------------------------------------------------------
    def ensure(self) -> GitOpsRepo:
        """Find or create the bare remote and a working clone (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not Path(self.remote).exists():
            self._git(
                "init", "--quiet", "--bare", "--initial-branch", MAIN, self.remote, cwd=self.root
            )
        if not (self.work / ".git").is_dir():
            shutil.rmtree(self.work, ignore_errors=True)
            self._git("clone", "--quiet", self.remote, str(self.work), cwd=self.root)
            self._git("checkout", "--quiet", "-B", MAIN)
            if not self._remote_git("rev-parse", "--verify", "--quiet", MAIN, check=False):
                for env in ENVIRONMENTS:
                    (self.work / env).mkdir(exist_ok=True)
                    (self.work / env / ".gitkeep").touch()
                (self.work / "README.md").write_text(
                    "# GitOps repository\n\nOne folder per environment. `staging/` is updated "
                    "by CI; `production/` only through an approved change branch.\n"
                )
                self._git("add", "-A")
                self._git("commit", "--quiet", "-m", "Create the environments")
                self._git("push", "--quiet", "-u", "origin", MAIN)
            else:
                self._git("branch", "--quiet", f"--set-upstream-to=origin/{MAIN}", MAIN)
        return self

    def sync_main(self) -> None:
        """The working clone on an up-to-date main (another CI run may have pushed)."""
        self._git("fetch", "--quiet", "--prune", "origin")
        self._git("checkout", "--quiet", MAIN)
        self._git("reset", "--quiet", "--hard", f"origin/{MAIN}")

    # -- reading what the remote holds --------------------------------------------------
    def head(self, ref: str = MAIN) -> str:
        return self._remote_git("rev-parse", ref)

    def branches(self) -> list[str]:
        out = self._remote_git("for-each-ref", "--format=%(refname:short)", "refs/heads")
        return [b for b in out.splitlines() if b]

    def read_environment(self, env: str, ref: str = MAIN) -> dict[str, str]:
        """File name -> text of every manifest in ``env/`` at ``ref`` of the remote."""
        names = self._remote_git("ls-tree", "--name-only", f"{ref}:{env}", check=False)
        manifests = [name for name in names.splitlines() if name.endswith(".yaml")]
        texts = self._read_blobs([f"{ref}:{env}/{name}" for name in manifests])
        return dict(zip(manifests, texts, strict=True))

    def _read_blobs(self, specs: list[str]) -> list[str]:
        """The text of each ``ref:path`` of the remote, in one ``git cat-file --batch`` (a
        reconcile reads every manifest of an environment: one git process, not one each)."""
        if not specs:
            return []
        try:
            done = subprocess.run(
                ["git", f"--git-dir={self.remote}", "cat-file", "--batch"],
                cwd=self.root,
                input="".join(f"{spec}\n" for spec in specs).encode(),
                capture_output=True,
                timeout=GIT_TIMEOUT_S,
                env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"`git cat-file --batch` took more than {GIT_TIMEOUT_S}s") from exc
        if done.returncode != 0:
            raise GitError(f"`git cat-file --batch` failed: {done.stderr.decode()[-800:]}")
        texts, out, pos = [], done.stdout, 0
        for spec in specs:  # each: "<sha> blob <size>\n<content>\n", or "<spec> missing\n"
            end = out.index(b"\n", pos)
            header = out[pos:end].decode().split()
            if len(header) != 3 or header[1] != "blob":
                raise GitError(f"{spec} is not a file in {self.remote}: {' '.join(header)}")
            size = int(header[2])
            texts.append(out[end + 1 : end + 1 + size].decode())
            pos = end + 1 + size + 1
        return texts

    def log(self, path: str | None = None, ref: str = MAIN, limit: int = 20) -> list[Commit]:
        args = ["log", f"-{limit}", "--format=%H%x1f%s%x1f%an", ref]
        if path:
            args += ["--", path]
        out = self._remote_git(*args)
        return [Commit(*line.split("\x1f")) for line in out.splitlines() if line]

    def show_file(self, path: str, ref: str = MAIN) -> str:
        return self._remote_git("show", f"{ref}:{path}", strip=False)

    # -- changing it --------------------------------------------------------------------
    def write_environment(self, env: str, files: dict[str, str]) -> None:
        """Make ``env/`` in the working clone hold exactly ``files``."""
        folder = self.work / env
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.yaml"):
            if old.name not in files:
                old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text)

    def commit_and_push(self, message: str, branch: str = MAIN) -> str | None:
        """Commit everything staged in the clone and push; None when nothing changed."""
        self._git("add", "-A")
        if not self._git("status", "--porcelain"):
            return None
        self._git("commit", "--quiet", "-m", message)
        self._git("push", "--quiet", "-u", "origin", branch)
        return self._git("rev-parse", "HEAD")

    def start_branch(self, branch: str) -> None:
        self.sync_main()
        self._git("checkout", "--quiet", "-B", branch, f"origin/{MAIN}")

    def merge_change(self, branch: str, approver: str, message: str) -> str:
        """Merge an approved change branch into main (no fast-forward: the merge commit
        records who approved), push, and delete the branch."""
        self.sync_main()
        self._git("fetch", "--quiet", "origin", branch)
        email = f"{approver}@workshop.invalid"
        self._git(
            "merge",
            "--quiet",
            "--no-ff",
            "-m",
            f"{message}\n\nApproved-by: {approver}",
            f"origin/{branch}",
            who=(approver, email),
        )
        self._git("push", "--quiet", "origin", MAIN)
        self.delete_branch(branch)
        return self._git("rev-parse", "HEAD")

    def delete_branch(self, branch: str) -> None:
        """Close a change without merging it (on the remote and in the clone)."""
        self._git("push", "--quiet", "origin", "--delete", branch)
        self._git("branch", "--quiet", "-D", branch, check=False)

    def revert_last(self, env: str) -> tuple[Commit, str]:
        """Revert the newest commit on main that changed ``env/``; push the revert."""
        self.sync_main()
        commits = self.log(f"{env}/*.yaml", limit=1)
        if not commits:
            raise StageError(f"nothing to roll back: no commit changed a manifest in {env}/")
        last = commits[0]
        parents = self._git("rev-list", "--parents", "-n", "1", last.sha).split()[1:]
        mainline = ["-m", "1"] if len(parents) > 1 else []  # a merge: keep main's side
        self._git("revert", "--no-edit", *mainline, last.sha)
        self._git("push", "--quiet", "origin", MAIN)
        return last, self._git("rev-parse", "HEAD")
