"""The dvc_cml pipeline, in Jenkinsfile order. The same code runs from the notebook,
the CLI (``mlops-workshop dvc_cml STAGE``) and the Jenkinsfile's ``sh`` steps.

checkout -> unit_tests -> lint -> remote_credentials -> sync_remotes -> (pull requests:)
reproduce -> lock_check (gate) -> push -> pushed_check (gate) -> compare -> report ->
commit_lock -> cleanup
"""

from __future__ import annotations

from typing import Any

from mlops_helpers.dvc_cml import local as _local  # noqa: F401  (registers "local")
from mlops_helpers.dvc_cml import s3 as _s3  # noqa: F401  (registers "s3")
from mlops_helpers.dvc_cml.registry import REGISTRY
from mlops_helpers.errors import StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.resources import teardown_handler

SCENARIO = "dvc_cml"
DEFAULTS: dict[str, Any] = {
    "target_branch": "main",  # the branch a pull request is compared against
    "feature_branch": "tune-c",  # the pull request's branch (the attendee suffix is added)
    "feature_params": "train.C=0.05",  # what the pull request changes in params.yaml
    "origin_remote": "origin",  # the shared DVC remote
    "cache_remote": "jenkins_local",  # the CI agent's own cache remote
    "dvc_timeout": 300,  # seconds any one git/dvc command may take
}


def _setting(ctx: StageContext, key: str) -> Any:
    return ctx.settings.get(key, DEFAULTS[key])


def feature_branch(ctx: StageContext) -> str:
    return ctx.settings.name(str(_setting(ctx, "feature_branch")))


def remotes(ctx: StageContext) -> list[str]:
    return [str(_setting(ctx, "origin_remote")), str(_setting(ctx, "cache_remote"))]


def shell(ctx: StageContext) -> Any:
    from mlops_helpers.dvc_cml.layout import Layout
    from mlops_helpers.dvc_cml.shell import Shell

    repo = Layout(ctx.run_dir).repo
    if not (repo / ".dvc").is_dir():
        raise StageError(f"no working repo at {repo}: run the checkout stage first")
    return Shell(repo, timeout=float(_setting(ctx, "dvc_timeout")))


def checkout(ctx: StageContext) -> dict[str, Any]:
    """A fresh project: main reproduced and pushed, and a pull-request branch on origin."""
    from mlops_helpers.dvc_cml import project

    backend = ctx.backend
    target, branch = str(_setting(ctx, "target_branch")), feature_branch(ctx)
    origin, cache = remotes(ctx)
    changes = project.parse_assignments(_setting(ctx, "feature_params"))
    ctx.say(backend.describe())
    backend.reset_origin()
    sh = project.create_project(backend.layout, backend.origin_url(), cache, origin, target)
    sh.timeout = float(_setting(ctx, "dvc_timeout"))
    options = backend.write_credentials(sh, origin)
    ctx.tracker.add("dvc_credentials", origin, module="mlops_helpers.dvc_cml.stages",
                    repo=str(sh.cwd), remote=origin, options=options)
    ran = project.reproduce(sh)
    sh.git("add", "-A")
    sh.git("commit", "-q", "-m", "Reproduce the pipeline on the target branch")
    project.push(sh, origin)
    project.git_push(sh, target)
    sh.git("checkout", "-q", "-b", branch)
    project.set_params(sh.cwd, changes)
    sh.git("commit", "-q", "-am", f"Try {', '.join(f'{k}={v}' for k, v in changes.items())}")
    project.git_push(sh, branch)
    project.drop_local_cache(sh)  # from here on the repo is what a fresh CI agent checks out
    ctx.state.update(branch=branch, target=target, changes=changes)
    ctx.say(f"{sh.cwd}: {target} reproduced ({', '.join(ran)}) and pushed; pull request "
            f"branch {branch} changes {changes}")
    return {"repo": str(sh.cwd), "target": target, "branch": branch, "changes": changes}


def unit_tests(ctx: StageContext) -> dict[str, Any]:
    from mlops_helpers.dvc_cml.shell import CommandFailed

    sh = shell(ctx)
    # the project's tests need no pytest plugins; not loading the workshop's saves ~2 s
    argv = ["env", "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1", "PYTHONDONTWRITEBYTECODE=1",
            _python(), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    try:
        out = sh.run(argv).stdout
    except CommandFailed as exc:
        raise StageError(f"the project's unit tests failed:\n{exc.output[-2000:]}") from exc
    summary = out.strip().splitlines()[-1]
    ctx.say(f"unit tests: {summary}")
    return {"summary": summary}


def lint(ctx: StageContext) -> dict[str, Any]:
    from mlops_helpers.dvc_cml.shell import CommandFailed, tool

    sh = shell(ctx)
    try:
        out = sh.run([tool("ruff"), "check", "--no-cache", "."]).stdout.strip()
    except CommandFailed as exc:
        raise StageError(f"ruff found problems:\n{exc.output[-2000:]}") from exc
    ctx.say(f"lint: {out}")
    return {"summary": out}


def remote_credentials(ctx: StageContext) -> dict[str, Any]:
    """Write the shared remote's credentials into .dvc/config.local (never committed)."""
    from mlops_helpers.dvc_cml import project

    sh, origin = shell(ctx), remotes(ctx)[0]
    project.require_remote(sh, origin)
    options = ctx.backend.write_credentials(sh, origin)
    ctx.tracker.add("dvc_credentials", origin, module="mlops_helpers.dvc_cml.stages",
                    repo=str(sh.cwd), remote=origin, options=options)
    written = ", ".join(options) if options else "nothing (this remote needs no credentials)"
    ctx.say(f"remote '{origin}': dvc remote modify --local wrote {written}")
    return {"remote": origin, "options": options}


def sync_remotes(ctx: StageContext) -> dict[str, Any]:
    """Pull what the CI cache remote has, the rest from origin, then fill the cache remote."""
    from mlops_helpers.dvc_cml import project

    sh = shell(ctx)
    origin, cache = remotes(ctx)
    try:
        from_cache = project.pull(sh, cache)
    except StageError as exc:
        if "is not configured" in str(exc):
            raise
        from_cache = "some files are missing in the CI cache remote"
    ctx.say(f"pull -r {cache}: {from_cache}")
    from_origin = project.pull(sh, origin)
    ctx.say(f"pull -r {origin}: {from_origin}")
    to_cache = project.push(sh, cache)
    ctx.say(f"push -r {cache}: {to_cache}")
    return {"from_cache": from_cache, "from_origin": from_origin, "to_cache": to_cache}


def reproduce(ctx: StageContext) -> dict[str, Any]:
    from mlops_helpers.dvc_cml import project

    ran = project.reproduce(shell(ctx))
    ctx.say(f"dvc repro ran: {', '.join(ran) or 'nothing (already up to date)'}")
    return {"ran": ran}


def lock_check(ctx: StageContext) -> dict[str, Any]:
    """Gate: no stage may be stale (params, code or data changed without dvc repro)."""
    from mlops_helpers.dvc_cml import project

    result = project.check_lock(shell(ctx))
    ctx.say("dvc.lock is up to date")
    return result


def push(ctx: StageContext) -> dict[str, Any]:
    from mlops_helpers.dvc_cml import project

    sh = shell(ctx)
    done = {remote: project.push(sh, remote) for remote in remotes(ctx)}
    for remote, line in done.items():
        ctx.say(f"push -r {remote}: {line}")
    return done


def pushed_check(ctx: StageContext) -> dict[str, Any]:
    """Gate: both remotes must hold every cached output."""
    from mlops_helpers.dvc_cml import project

    result = project.check_pushed(shell(ctx), remotes(ctx))
    ctx.say(f"every output is in {', '.join(remotes(ctx))}")
    return result


def compare(ctx: StageContext) -> dict[str, Any]:
    import json

    from mlops_helpers.dvc_cml import project
    from mlops_helpers.dvc_cml.layout import Layout

    target = str(_setting(ctx, "target_branch"))
    found = project.compare(shell(ctx), target)
    out = Layout(ctx.run_dir).report_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(found, indent=2))
    ctx.say(f"compared with {target}: {json.dumps(found['metrics'])}")
    return {"target": target, "metrics": found["metrics"], "params": found["params"]}


def report(ctx: StageContext) -> dict[str, Any]:
    import json

    from mlops_helpers.dvc_cml.layout import Layout
    from mlops_helpers.dvc_cml.report import write_report

    out = Layout(ctx.run_dir).report_dir
    found = out / "compare.json"
    if not found.is_file():
        raise StageError(f"no comparison in {out}: run the compare stage first")
    written = write_report(json.loads(found.read_text()), out,
                           branch=ctx.state.get("branch", feature_branch(ctx)))
    where = ctx.backend.post_report(written)
    ctx.say(where)
    return {"markdown": str(written.markdown), "plot": str(written.plot), "posted": where}


def commit_lock(ctx: StageContext) -> dict[str, Any]:
    from mlops_helpers.dvc_cml import project

    sh = shell(ctx)
    branch = sh.git("rev-parse", "--abbrev-ref", "HEAD")
    if branch == str(_setting(ctx, "target_branch")):
        raise StageError(f"the repo is on {branch}: dvc.lock is committed back to the pull "
                         f"request's branch only")
    result = project.commit_lock(sh, branch)
    ctx.say(f"{branch}: committed {', '.join(result['committed']) or 'nothing new'}, "
            f"pushed to origin at {result['commit'][:8]}")
    return result


def cleanup(ctx: StageContext) -> dict[str, Any]:
    """Remove credentials from .dvc/config.local and release what the run started.

    The working repo, origin and both remotes stay: they are the run's result.
    """
    return cleanup_stage(ctx)


def _python() -> str:
    import sys

    return sys.executable


@teardown_handler("dvc_credentials")
def _remove_credentials(params: dict[str, Any]) -> None:
    """Teardown: unset every option a stage wrote into .dvc/config.local."""
    from pathlib import Path

    from mlops_helpers.dvc_cml.shell import Shell

    repo = Path(params["repo"])
    if (repo / ".dvc").is_dir():
        sh = Shell(repo, timeout=60)
        for option in params.get("options", []):
            sh.dvc("remote", "modify", "--local", "--unset", params["remote"], option,
                   check=False)

PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage("checkout", checkout, "working repo: main reproduced + pushed, a PR branch"),
        Stage("unit_tests", unit_tests, "the project's own pytest tests"),
        Stage("lint", lint, "ruff check on the project"),
        Stage("remote_credentials", remote_credentials,
              "dvc remote modify --local with the remote's credentials"),
        Stage("sync_remotes", sync_remotes, "pull CI cache remote, pull origin, push cache"),
        Stage("reproduce", reproduce, "dvc repro on the pull request", environment="pull request"),
        Stage("lock_check", lock_check, "dvc.lock up to date (dvc status)", gate=True,
              environment="pull request"),
        Stage("push", push, "dvc push to both remotes", environment="pull request"),
        Stage("pushed_check", pushed_check, "every output in both remotes (dvc status -c)",
              gate=True, environment="pull request"),
        Stage("compare", compare, "dvc metrics/params/plots diff against the target",
              environment="pull request"),
        Stage("report", report, "Markdown report with table and plot (CML comment)",
              environment="pull request"),
        Stage("commit_lock", commit_lock, "commit dvc.lock back to the PR branch",
              environment="pull request"),
        Stage("cleanup", cleanup, "remove credentials, release what the run started"),
    ],
    backends=REGISTRY,
    defaults=DEFAULTS,
)
