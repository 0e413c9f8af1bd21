"""The dvc_cml pipeline, in Jenkinsfile order. The same code runs from the notebook,
the CLI (``mlops-workshop dvc_cml STAGE``) and the Jenkinsfile's ``sh`` steps, always on
the workspace it is given: Jenkins' ``WORKSPACE`` (or ``-p workspace PATH``), and on a pull
request the ``CHANGE_ID``/``CHANGE_TARGET``/``CHANGE_BRANCH`` build (see ``workspace.py``).

checkout -> unit_tests -> lint -> remote_credentials -> sync_remotes -> (pull requests:)
reproduce -> lock_check (gate) -> push -> pushed_check (gate) -> compare -> report ->
commit_lock -> cleanup
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_helpers.dvc_cml import local as _local  # noqa: F401  (registers "local")
from mlops_helpers.dvc_cml import s3 as _s3  # noqa: F401  (registers "s3")
from mlops_helpers.dvc_cml.registry import REGISTRY
from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.resources import teardown_handler

SCENARIO = "dvc_cml"


def feature_branch(ctx: StageContext) -> str:
    return ctx.settings.name(ctx.settings.feature_branch)


def remotes(ctx: StageContext) -> list[str]:
    return [ctx.settings.origin_remote, ctx.settings.cache_remote]


def pull_request(ctx: StageContext) -> Any:
    from mlops_helpers.dvc_cml.workspace import PullRequest

    return PullRequest.from_settings(ctx.settings)


def target_branch(ctx: StageContext) -> str:
    pr = pull_request(ctx)
    return pr.target if pr else ctx.settings.target_branch


def shell(ctx: StageContext, remote_access: bool = False) -> Any:
    """A shell in the workspace; with ``remote_access`` its DVC calls get the shared
    remote's credentials in their environment (the backend checks they are there)."""
    from mlops_helpers.dvc_cml import workspace
    from mlops_helpers.dvc_cml.shell import Shell

    repo = workspace.resolve(ctx.settings)
    env = ctx.backend.remote_env() if remote_access else {}
    return Shell(repo, timeout=ctx.settings.dvc_timeout, extra_env=env)


def remote_shells(ctx: StageContext) -> dict[str, Any]:
    """One shell per remote: the shared origin's DVC calls get the job's credentials (the
    backend refuses here, before any work, when they are missing); the CI cache remote is a
    folder of the agent and gets none, so its DVC calls need no process of their own."""
    origin, cache = remotes(ctx)
    return {origin: shell(ctx, remote_access=True), cache: shell(ctx)}


def create_sandbox(ctx: StageContext) -> dict[str, str]:
    """The learner's project with an open pull request (see ``sandbox.py``); returns the
    settings a Jenkins PR build would have. Not a stage: CI builds the team's own repo."""
    from mlops_helpers.dvc_cml.sandbox import create_sandbox as create

    return create(
        ctx,
        ctx.settings.feature_params,
        feature_branch(ctx),
        target=ctx.settings.target_branch,
        origin_remote=remotes(ctx)[0],
    )


def checkout(ctx: StageContext) -> dict[str, Any]:
    """The workspace as Jenkins checked it out (on a PR: the PR head merged with the target,
    from a fork too), left on that commit; on a PR the target fetched for ``compare``; the CI
    cache remote added to .dvc/config.local. ``skip_ci``: this build is the one CI's own
    dvc.lock push started (the Jenkinsfile then stops). Git credentials only."""
    from mlops_helpers.dvc_cml import project, workspace
    from mlops_helpers.dvc_cml.layout import Layout

    sh, pr = shell(ctx), pull_request(ctx)
    origin, cache = remotes(ctx)
    project.require_remote(sh, origin)
    ctx.backend.check_origin_url(project.remote_urls(sh)[origin])
    ctx.say(ctx.backend.describe())
    if pr:
        workspace.fetch_target(sh, pr)
    head = sh.git("rev-parse", "HEAD")
    skip = workspace.triggered_by_ci(sh, pr)
    folder = Path(ctx.settings.ci_cache or Layout(ctx.run_dir).ci_cache)
    folder.mkdir(parents=True, exist_ok=True)
    sh.dvc("remote", "add", "--local", "-f", cache, str(folder))
    ctx.state.update(head=head, gates={})  # a new checkout: earlier gate results are void
    where = pr.describe() if pr else "branch build"
    ctx.say(
        f"{sh.cwd} at {head[:8]} ({where}); CI cache remote '{cache}' = {folder}"
        + ("; this build is of CI's own dvc.lock commit [skip ci]" if skip else "")
    )
    return {
        "workspace": str(sh.cwd),
        "head": head,
        "pull_request": pr.number if pr else None,
        "skip_ci": skip,
    }


def unit_tests(ctx: StageContext) -> dict[str, Any]:
    import sys

    from mlops_helpers.dvc_cml.shell import CommandFailed

    sh = shell(ctx)
    # the project's tests need no pytest plugins; not loading the workshop's saves ~2 s
    argv = [
        "env",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1",
        "PYTHONDONTWRITEBYTECODE=1",
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    try:
        out = sh.run(argv).stdout
    except CommandFailed as exc:
        ctx.say(exc.output[-2000:])
        last = exc.output.strip().splitlines()[-1] if exc.output.strip() else "no output"
        raise StageError(f"the project's unit tests failed: {last}") from None
    summary = out.strip().splitlines()[-1]
    ctx.say(f"unit tests: {summary}")
    return {"summary": summary}


def lint(ctx: StageContext) -> dict[str, Any]:
    from mlops_helpers.dvc_cml.shell import CommandFailed, tool

    sh = shell(ctx)
    try:
        out = sh.run([tool("ruff"), "check", "--no-cache", "."]).stdout.strip()
    except CommandFailed as exc:
        ctx.say(exc.output[-2000:])
        found = [line for line in exc.output.splitlines() if line.startswith("Found ")]
        raise StageError(
            f"ruff found problems in {sh.cwd}: {found[-1] if found else exc.reason}"
        ) from None
    ctx.say(f"lint: {out}")
    return {"summary": out}


STATUS_WORDS = {
    "new": "only in the local cache",
    "deleted": "only in the remote",
    "missing": "in neither",
}  # dvc status -c


def remote_credentials(ctx: StageContext) -> dict[str, Any]:
    """The shared remote answers with the job's credentials (``dvc status -c``); they stay
    in this process's environment: nothing is written to .dvc/config.local."""
    from mlops_helpers.dvc_cml import project

    origin = remotes(ctx)[0]
    sh = shell(ctx, remote_access=True)  # no credentials: a one-line error, before any work
    status = project.missing_outputs(sh, origin)
    counts = {
        STATUS_WORDS.get(word, word): list(status.values()).count(word)
        for word in sorted(set(status.values()))
    }
    names = sorted(k for k in sh.extra_env if "SECRET" in k or "KEY_ID" in k or "PROFILE" in k)
    ctx.say(
        f"remote '{origin}' answers; outputs of this commit: "
        f"{', '.join(f'{n} {w}' for w, n in counts.items()) or 'all in sync'}; "
        f"credentials from the environment: {', '.join(names) or 'none needed'}"
    )
    return {"remote": origin, "credentials": names}


def sync_remotes(ctx: StageContext) -> dict[str, Any]:
    """Pull what the CI cache remote has, the rest from origin, then fill the cache remote."""
    from mlops_helpers.dvc_cml import project

    origin, cache = remotes(ctx)
    shells = remote_shells(ctx)
    try:
        from_cache = project.pull(shells[cache], cache)
    except StageError as exc:
        if "is not configured" in str(exc):
            raise
        from_cache = "some files are missing in the CI cache remote"
    from_origin = project.pull(shells[origin], origin)
    to_cache = project.push(shells[cache], cache)
    ctx.say(
        f"pull -r {cache}: {from_cache} | pull -r {origin}: {from_origin} | "
        f"push -r {cache}: {to_cache}"
    )
    return {"from_cache": from_cache, "from_origin": from_origin, "to_cache": to_cache}


def _on_checked_out_commit(ctx: StageContext, sh: Any) -> str:
    """The commit the checkout stage recorded, which HEAD must still be."""
    head = ctx.state.get("head")
    if not head:
        raise StageError(f"no checkout recorded in {ctx.run_dir}: run the checkout stage first")
    if sh.git("rev-parse", "HEAD") != head:
        raise StageError(
            f"the workspace is no longer at {head[:8]}, the commit the checkout stage "
            f"recorded: run the checkout stage first"
        )
    return str(head)


def reproduce(ctx: StageContext) -> dict[str, Any]:
    """``dvc repro`` on the commit Jenkins checked out (on a PR: its head merged with the
    target)."""
    from mlops_helpers.dvc_cml import project

    sh = shell(ctx)
    _on_checked_out_commit(ctx, sh)
    ran = project.reproduce(sh)
    ctx.say(f"dvc repro ran: {', '.join(ran) or 'nothing (already up to date)'}")
    return {"ran": ran}


def lock_check(ctx: StageContext) -> dict[str, Any]:
    """Gate: no stage may be stale (params, code or data changed without dvc repro). The
    result, pass or fail, is recorded for this exact workspace content."""
    from mlops_helpers.dvc_cml import gate, project

    sh = shell(ctx)
    try:
        result = project.check_lock(sh)
    except GateFailed as exc:
        gate.record(ctx.state, "lock_check", sh, passed=False, reason=str(exc))
        raise
    gate.record(ctx.state, "lock_check", sh, passed=True)
    ctx.say(f"dvc.lock is up to date (sha256 {gate.lock_digest(sh)[:12]})")
    return result


def push(ctx: StageContext) -> dict[str, Any]:
    """``dvc push`` to both remotes: only what lock_check passed."""
    from mlops_helpers.dvc_cml import gate, project

    shells = remote_shells(ctx)
    gate.require_passed(ctx.state, ("lock_check",), shell(ctx), "push")
    done = {remote: project.push(sh, remote) for remote, sh in shells.items()}
    ctx.say(" | ".join(f"push -r {remote}: {line}" for remote, line in done.items()))
    return done


def pushed_check(ctx: StageContext) -> dict[str, Any]:
    """Gate: both remotes must hold every cached output (recorded like lock_check)."""
    from mlops_helpers.dvc_cml import gate, project

    shells, sh = remote_shells(ctx), shell(ctx)
    try:
        result = project.check_pushed(shells)
    except GateFailed as exc:
        gate.record(ctx.state, "pushed_check", sh, passed=False, reason=str(exc))
        raise
    gate.record(ctx.state, "pushed_check", sh, passed=True)
    ctx.say(f"every output is in {', '.join(remotes(ctx))}")
    return result


def compare(ctx: StageContext) -> dict[str, Any]:
    """``dvc metrics/params/plots diff`` of the workspace against the target branch."""
    import json

    from mlops_helpers.dvc_cml import project, workspace
    from mlops_helpers.dvc_cml.layout import Layout

    sh, target = shell(ctx), target_branch(ctx)
    found = project.compare(sh, target, workspace.target_rev(sh, target))
    out = Layout(ctx.run_dir).report_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(found, indent=2))
    from mlops_helpers.dvc_cml.report import diff_rows, summary_line

    ctx.say(f"compared with {target}: {summary_line(diff_rows(found['metrics']))}")
    return {"target": target, "metrics": found["metrics"], "params": found["params"]}


def report(ctx: StageContext) -> dict[str, Any]:
    """Markdown + plot from the comparison; posted with CML where the backend can."""
    import json

    from mlops_helpers.dvc_cml import workspace
    from mlops_helpers.dvc_cml.layout import Layout
    from mlops_helpers.dvc_cml.report import write_report

    pr = pull_request(ctx)
    target = workspace.cml_target(ctx.settings, pr)  # a bad setting first, whatever ran before
    out = Layout(ctx.run_dir).report_dir
    found = out / "compare.json"
    if not found.is_file():
        raise StageError(f"no comparison in {out}: run the compare stage first")
    if pr:
        branch = f"{pr.fork}:{pr.branch}" if pr.fork else pr.branch
    else:
        branch = shell(ctx).git("branch", "--show-current") or "HEAD"
    written = write_report(json.loads(found.read_text()), out, branch=branch)
    where = ctx.backend.post_report(written, target, shell(ctx).cwd)
    ctx.say(where)
    return {"markdown": str(written.markdown), "plot": str(written.plot), "posted": where}


def commit_lock(ctx: StageContext) -> dict[str, Any]:
    """Commit dvc.lock on top of the built commit (``[skip ci]``) and push it to the PR's
    branch: only what both gates passed, only on a pull request, only where the branch lives
    (origin). A fork's branch cannot be pushed to: if the reproduction changed anything, the
    stage refuses and says what the contributor has to do."""
    from mlops_helpers.dvc_cml import gate, project

    sh, pr = shell(ctx), pull_request(ctx)
    if pr is None:
        raise StageError(
            "commit_lock runs on pull requests only (CHANGE_ID, CHANGE_TARGET "
            "and CHANGE_BRANCH are not set): a branch build commits nothing"
        )
    _on_checked_out_commit(ctx, sh)
    gate.require_passed(ctx.state, ("lock_check", "pushed_check"), sh, "commit_lock")
    if pr.fork:
        changed = project.lock_changes(sh)
        if changed:
            raise StageError(
                f"pull request #{pr.number} comes from the fork '{pr.fork}', which CI cannot "
                f"push to; the reproduction changed {', '.join(changed)}: run `dvc repro` "
                f"and commit dvc.lock on your branch '{pr.branch}'"
            )
        ctx.say(f"{pr.describe()}: dvc.lock is already committed; nothing to push")
        return {"branch": pr.branch, "fork": pr.fork, "committed": [], "commit": ""}
    build = ctx.settings.build_number
    result = project.commit_lock(sh, pr.branch, str(build) if build else None)
    ctx.state.update(head=result["commit"])  # the workspace is now on CI's own commit
    ctx.say(
        f"{pr.branch}: committed {', '.join(result['committed']) or 'nothing new'}; "
        f"origin/{pr.branch} is at {result['commit'][:8]}"
    )
    return result


def cleanup(ctx: StageContext) -> dict[str, Any]:
    """Release what the run started. Credentials were never written anywhere; the
    workspace, origin and both remotes stay: they are the build's result."""
    return cleanup_stage(ctx)


@teardown_handler("dvc_credentials")
def _remove_credentials(params: dict[str, Any]) -> None:
    """Teardown of runs made by earlier versions, which wrote the remote's credentials into
    .dvc/config.local: unset them, so an old run directory keeps no secret."""
    from mlops_helpers.dvc_cml.shell import Shell

    repo = Path(params["repo"])
    if (repo / ".dvc").is_dir():
        sh = Shell(repo, timeout=60)
        for option in params.get("options", []):
            sh.dvc("remote", "modify", "--local", "--unset", params["remote"], option, check=False)


PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage("checkout", checkout, "the workspace at the PR head, target fetched"),
        Stage("unit_tests", unit_tests, "the project's own pytest tests"),
        Stage("lint", lint, "ruff check on the project"),
        Stage(
            "remote_credentials",
            remote_credentials,
            "the shared remote answers with the job's credentials (none stored)",
        ),
        Stage("sync_remotes", sync_remotes, "pull CI cache remote, pull origin, push cache"),
        Stage("reproduce", reproduce, "dvc repro on the PR head", environment="pull request"),
        Stage(
            "lock_check",
            lock_check,
            "dvc.lock up to date (dvc status)",
            gate=True,
            environment="pull request",
        ),
        Stage("push", push, "dvc push to both remotes", environment="pull request"),
        Stage(
            "pushed_check",
            pushed_check,
            "every output in both remotes (dvc status -c)",
            gate=True,
            environment="pull request",
        ),
        Stage(
            "compare",
            compare,
            "dvc metrics/params/plots diff against the target",
            environment="pull request",
        ),
        Stage(
            "report",
            report,
            "Markdown report with table and plot (CML comment)",
            environment="pull request",
        ),
        Stage(
            "commit_lock",
            commit_lock,
            "commit dvc.lock to the PR branch [skip ci]",
            environment="pull request",
        ),
        Stage("cleanup", cleanup, "release what the run started"),
    ],
    backends=REGISTRY,
)
