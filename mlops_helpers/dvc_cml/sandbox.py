"""A learner's project with an open pull request, for the notebook (not a pipeline stage).

What a team would do by hand: copy the template (``scenarios/dvc_cml``) into a fresh git
repo, ``dvc init``, add the shared remote, reproduce and push ``main``, then open a branch
that changes ``params.yaml`` without reproducing. A bare git repo plays the hosted origin.
The returned settings are what Jenkins gives a pull-request build; the pipeline's stages then
run on the sandbox through the very same workspace code path as under Jenkins.

Building ``main`` is the same work every time the template is unchanged, so the sandbox
keeps its DVC cache (outputs and run-cache) under the build directory: the next sandbox's
``dvc repro`` restores main's outputs from DVC's run-cache instead of recomputing them. The
pull request's own ``dvc repro`` never sees that cache (``_forget_outputs`` removes it).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

from mlops_helpers import paths
from mlops_helpers.dvc_cml import project
from mlops_helpers.dvc_cml.layout import Layout, template_dir
from mlops_helpers.dvc_cml.shell import Shell
from mlops_helpers.errors import ConfigError
from mlops_helpers.pipeline import StageContext

IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache", "*.pyc")
IGNORED = re.compile(r"^(__pycache__|\.pytest_cache|\.ruff_cache|.*\.pyc)$")
PULL_REQUEST_NUMBER = "1"


def create_sandbox(
    ctx: StageContext,
    feature_params: str,
    feature_branch: str,
    target: str,
    origin_remote: str,
) -> dict[str, str]:
    """Build the sandbox; returns ``workspace`` and the ``change_*`` settings of its PR."""
    backend = ctx.backend
    backend.validate()  # a missing setting or credential stops us before anything exists
    origin_url = backend.sandbox_origin_url()
    changes = project.parse_assignments(feature_params)
    layout = Layout(ctx.run_dir)
    # the default CI cache remote belongs to the sandbox's builds: a new sandbox starts it empty
    for path in (layout.sandbox_repo, layout.origin_git, layout.ci_cache):
        shutil.rmtree(path, ignore_errors=True)
    backend.prepare_sandbox_origin()
    shutil.copytree(template_dir(), layout.sandbox_repo, ignore=IGNORE)
    timeout = ctx.settings.dvc_timeout
    sh = Shell(layout.sandbox_repo, timeout=timeout)  # only the push needs credentials
    remote_sh = Shell(layout.sandbox_repo, timeout=timeout, extra_env=backend.remote_env())
    sh.git("init", "-q", "-b", target)
    sh.git("config", "commit.gpgsign", "false")
    sh.dvc("init", "-q")
    # the file `dvc remote add -d origin URL` writes; written at once to spare dvc calls
    (sh.cwd / ".dvc" / "config").write_text(
        f"[core]\n    remote = {origin_remote}\n    autostage = true\n"
        f"['remote \"{origin_remote}\"']\n    url = {origin_url}\n"
    )
    sh.git("add", "-A")
    sh.git("commit", "-q", "-m", "Start the model project from the template")
    store = run_cache_store()
    warm = store.is_dir()
    if warm:  # main of an unchanged template was built before: DVC restores it
        shutil.copytree(store, sh.cwd / ".dvc" / "cache", dirs_exist_ok=True)
    ran = project.reproduce(sh, from_cache=warm)
    how = "reproduced" if ran else "restored from DVC's run-cache"
    _keep_run_cache(sh.cwd / ".dvc" / "cache", store)
    sh.git("add", "-A")
    sh.git("commit", "-q", "-m", "Reproduce the pipeline")
    project.push(remote_sh, origin_remote)
    sh.run(["git", "init", "-q", "--bare", "-b", target, str(layout.origin_git)])
    sh.git("remote", "add", "origin", str(layout.origin_git))
    project.push_branch(sh, target)
    sh.git("checkout", "-q", "-b", feature_branch)
    project.set_params(sh.cwd, changes)
    if not sh.git("status", "--porcelain").strip():
        raise ConfigError(
            f"feature_params {feature_params!r} is what {target} has already: the pull "
            f"request would change nothing; pick another value"
        )
    sh.git("commit", "-q", "-am", f"Try {_describe(changes)}")
    project.push_branch(sh, feature_branch)
    _forget_outputs(sh)  # from here on it looks like a fresh CI agent's clone
    ctx.say(
        f"sandbox {sh.cwd}: {target} {how} and pushed to {origin_url}; pull request "
        f"#{PULL_REQUEST_NUMBER} from {feature_branch} changes {_describe(changes)}"
    )
    return {
        "workspace": str(sh.cwd),
        "change_id": PULL_REQUEST_NUMBER,
        "change_target": target,
        "change_branch": feature_branch,
    }


def run_cache_store() -> Path:
    """Where main's DVC cache (outputs and run-cache) is kept between sandboxes: one folder
    per content of the template, under the build directory."""
    digest = hashlib.sha256()
    for path in sorted(template_dir().rglob("*")):
        inside = path.relative_to(template_dir()).parts
        if path.is_file() and not any(IGNORED.match(part) for part in inside):
            digest.update(str(path.relative_to(template_dir())).encode() + b"\0")
            digest.update(path.read_bytes())
    return paths.build_dir() / "dvc_cml-run-cache" / digest.hexdigest()[:16]


def _keep_run_cache(cache: Path, store: Path) -> None:
    """Copy the fresh cache to ``store`` once; a whole-folder rename, so a concurrent
    sandbox sees either nothing or a complete copy."""
    if store.is_dir():
        return
    partial = store.with_name(f"{store.name}.{os.getpid()}.partial")
    shutil.copytree(cache, partial, dirs_exist_ok=True)
    try:
        partial.rename(store)
    except OSError:  # another sandbox was first
        shutil.rmtree(partial, ignore_errors=True)


def _describe(changes: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in changes.items())


def _forget_outputs(sh: Shell) -> None:
    """Drop the DVC cache and the outputs, which a fresh CI checkout would not have."""
    shutil.rmtree(sh.cwd / ".dvc" / "cache", ignore_errors=True)
    for folder in ("data", "model"):
        for path in (sh.cwd / folder).glob("*"):
            if path.name != ".gitignore":
                path.unlink()
