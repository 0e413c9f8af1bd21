"""The git + DVC work on the workspace, shared by every backend.

Each function does one CI step and raises ``StageError`` / ``GateFailed`` with a one-line
message that says what is wrong and what to do. None of them deletes the repo or a remote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_helpers.dvc_cml.shell import CommandFailed, Shell
from mlops_helpers.dvc_cml.workspace import SKIP_MARKER
from mlops_helpers.errors import ConfigError, GateFailed, StageError


# -- params -----------------------------------------------------------------------------
def parse_assignments(text: str) -> dict[str, Any]:
    """``"train.C=0.05, train.max_iter=300"`` -> ``{"train.C": 0.05, ...}`` (YAML values)."""
    import yaml

    found: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"parameter change {part!r} is not of the form stage.name=value")
        found[key.strip()] = yaml.safe_load(value.strip())
    return found


def read_params(repo: Path) -> dict[str, Any]:
    """params.yaml as a mapping, or a ConfigError that says what is wrong with it."""
    import yaml

    path = repo / "params.yaml"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: the pipeline has no parameters to read")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML, fix it and run again: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError(
            f"{path} must be a mapping of stage names to parameters, not {type(params).__name__}"
        )
    return params


def set_params(repo: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Write ``stage.name=value`` changes into params.yaml; returns the new params."""
    import yaml

    params = read_params(repo)
    for dotted, value in changes.items():
        stage, _, name = dotted.partition(".")
        if stage not in params or not isinstance(params[stage], dict) or name not in params[stage]:
            raise ConfigError(f"params.yaml has no parameter {dotted!r}")
        params[stage][name] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


# -- the working repo -------------------------------------------------------------------
def reproduce(sh: Shell, from_cache: bool = False) -> list[str]:
    """``dvc repro``; returns the stages that ran. A failing stage is named in the error.
    ``from_cache``: every stage's run is in DVC's run-cache (see ``Shell.dvc``)."""
    read_params(sh.cwd)  # a broken params.yaml: say so before DVC does, more cryptically
    try:
        out = sh.dvc("repro", from_cache=from_cache).stdout
    except CommandFailed as exc:
        import re

        failed = re.findall(r"failed to reproduce '([^']+)'", exc.output)
        where = f"stage '{failed[0]}'" if failed else "the pipeline"
        raise StageError(
            f"dvc repro failed in {where}: {exc.reason}; the repo and the "
            f"remotes are unchanged, fix it and run again"
        ) from None
    return [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]


def remote_urls(sh: Shell) -> dict[str, str]:
    """Remote name -> URL from .dvc/config, then .dvc/config.local (read directly, no dvc)."""
    import re

    urls: dict[str, str] = {}
    for name in ("config", "config.local"):
        path = sh.cwd / ".dvc" / name
        section = None
        for line in (path.read_text() if path.is_file() else "").splitlines():
            header = re.match(r"""\s*\[\s*'?remote "([^"]+)"'?\s*\]""", line)
            if header or line.lstrip().startswith("["):
                section = header.group(1) if header else None
                if section and section not in urls:
                    urls[section] = ""
                continue
            key, sep, value = line.partition("=")
            if section and sep and key.strip() == "url":
                urls[section] = value.strip()
    return urls


def known_remotes(sh: Shell) -> list[str]:
    return list(remote_urls(sh))


def require_remote(sh: Shell, name: str) -> None:
    """The remote is configured and, when it is a folder, the folder exists."""
    urls = remote_urls(sh)
    if name not in urls:
        raise StageError(
            f"DVC remote '{name}' is not configured in {sh.cwd}; known remotes: "
            f"{', '.join(urls) or '(none)'}. Fix the remote setting and rerun."
        )
    url = urls[name]
    if url and "://" not in url and not Path(url).is_dir():
        raise StageError(
            f"DVC remote '{name}' points at {url}, which does not exist; "
            f"nothing was changed. Restore the folder or fix the remote's URL."
        )


REFUSALS = (
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AccessDenied",
    "ExpiredToken",
    "NoSuchBucket",
)


def _why(exc: CommandFailed, sh: Shell | None = None, remote: str = "") -> str:
    """Name an S3 refusal up front: it is the usual cause, and DVC buries it (a failed pull
    only says "failed to download"; then one ``dvc status -c`` asks the remote why)."""
    output = exc.output
    if sh is not None and not any(code in output for code in REFUSALS):
        probe = sh.dvc("status", "-c", "-r", remote, check=False, timeout=60)
        output += probe.stdout + probe.stderr
    codes = [code for code in REFUSALS if code in output]
    if codes:
        return (
            f"the remote refused the request ({', '.join(codes)}): check the credentials "
            f"and the bucket"
        )
    return f"{exc.reason}; check its URL and credentials"


def push(sh: Shell, remote: str) -> str:
    require_remote(sh, remote)
    try:
        return sh.dvc("push", "-r", remote).stdout.strip().splitlines()[-1]
    except CommandFailed as exc:
        raise StageError(
            f"dvc push to remote '{remote}' failed: {_why(exc)}; nothing was removed"
        ) from None


def pull(sh: Shell, remote: str) -> str:
    require_remote(sh, remote)
    try:
        out = sh.dvc("pull", "-r", remote).stdout.strip()
    except CommandFailed as exc:
        raise StageError(
            f"dvc pull from remote '{remote}' failed: {_why(exc, sh, remote)}; the "
            f"workspace was not changed"
        ) from None
    return out.splitlines()[-1] if out else "up to date"


def push_branch(sh: Shell, branch: str) -> None:
    """``git push origin HEAD:<branch>``; a branch that moved on meanwhile is refused."""
    try:
        sh.git_remote("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    except CommandFailed as exc:
        moved = "rejected" in exc.output or "fetch first" in exc.output
        why = (
            f"'{branch}' has new commits on origin since this build started; the build "
            f"of those commits will reproduce them"
            if moved
            else exc.reason
        )
        raise StageError(f"git push to origin {branch} failed: {why}") from None


# -- the two gates ----------------------------------------------------------------------
def stale_stages(sh: Shell) -> dict[str, list[str]]:
    """``dvc status --json``: stage -> what changed (deps, params, outs)."""
    status = sh.dvc_json("status")
    stale: dict[str, list[str]] = {}
    for stage, changes in status.items():
        reasons: list[str] = []
        for change in changes if isinstance(changes, list) else [changes]:
            if isinstance(change, dict):
                for kind, what in change.items():
                    names = ", ".join(what) if isinstance(what, dict) else str(what)
                    reasons.append(f"{kind}: {names}")
            else:
                reasons.append(str(change))
        stale[stage.split(":")[-1]] = reasons
    return stale


def check_lock(sh: Shell) -> dict[str, Any]:
    try:
        stale = stale_stages(sh)
    except CommandFailed as exc:
        if "dvc.lock" not in exc.output:
            raise
        found = [
            line.strip()
            for line in exc.output.splitlines()
            if "not a valid" in line or "validation failed" in line
        ]
        raise GateFailed(
            f"dvc.lock is not valid ({'; '.join(found) or exc.reason}). "
            f"Run `dvc repro` and commit dvc.lock."
        ) from None
    if stale:
        lines = "; ".join(f"{stage} ({' / '.join(why)})" for stage, why in stale.items())
        raise GateFailed(
            f"dvc.lock is not up to date; stale stages: {lines}. "
            f"Run `dvc repro` and commit dvc.lock."
        )
    return {"stale_stages": []}


def missing_outputs(sh: Shell, remote: str) -> dict[str, str]:
    require_remote(sh, remote)
    try:
        return dict(sh.dvc_json("status", "-c", "-r", remote))
    except CommandFailed as exc:
        raise StageError(
            f"dvc status -c against remote '{remote}' failed: {_why(exc)}; nothing was changed"
        ) from None


def check_pushed(shells: dict[str, Shell]) -> dict[str, Any]:
    """Every remote (with the shell whose environment reaches it) holds every output."""
    missing = {remote: missing_outputs(sh, remote) for remote, sh in shells.items()}
    missing = {remote: paths for remote, paths in missing.items() if paths}
    if missing:
        lines = "; ".join(f"remote '{r}' lacks {', '.join(sorted(p))}" for r, p in missing.items())
        raise GateFailed(f"not everything is pushed: {lines}. Run `dvc push -r <remote>`.")
    return {"remotes_clean": list(shells)}


# -- compare and commit back -------------------------------------------------------------
def compare(sh: Shell, target: str, rev: str) -> dict[str, Any]:
    """Workspace against ``rev`` (the target branch): metrics, params and plot data, as DVC
    sees them."""
    return {
        "target": target,
        "metrics": sh.dvc_json("metrics", "diff", rev, "--all"),
        "params": sh.dvc_json("params", "diff", rev),
        "plots": sh.dvc_json("plots", "diff", rev),
    }


LOCK_FILES = ("dvc.lock", "metrics.json", "plots", "params.yaml")  # what CI commits back


def lock_changes(sh: Shell) -> list[str]:
    """The files CI would commit back that differ from the checked-out commit."""
    changed = sh.git("status", "--porcelain", "--", *LOCK_FILES).splitlines()
    return sorted({line[3:] for line in changed})


def commit_lock(sh: Shell, branch: str, build: str | None = None) -> dict[str, Any]:
    """Commit dvc.lock (and the git-tracked metrics and plots) and push it to ``branch``.

    The message carries ``[skip ci]``: the push triggers a build of this very commit, which
    the Jenkinsfile skips, so CI does not loop on its own commits.
    """
    sh.git("add", *LOCK_FILES)
    staged = sh.git("diff", "--cached", "--name-only").splitlines()
    if staged:
        where = f" (build {build})" if build else ""
        sh.git("commit", "-q", "-m", f"Update dvc.lock from CI{where} {SKIP_MARKER}")
    push_branch(sh, branch)
    return {"branch": branch, "committed": staged, "commit": sh.git("rev-parse", "HEAD")}
