"""The seldon_kind pipeline: unit tests, training, images, local serving, the integration
test, then GitOps promotion (staging automatic, production through an approved change).
The same stage code runs from the notebook, the CLI and Jenkins.
"""

from __future__ import annotations

import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.seldon_kind import kind as _kind  # noqa: F401  (registers "kind")
from mlops_helpers.seldon_kind import local as _local  # noqa: F401  (registers "local")
from mlops_helpers.seldon_kind import manifests, modelwork
from mlops_helpers.seldon_kind.catalog import (
    DEPLOYMENTS,
    FOLDERS,
    PREPACKAGED,
    corpus_path,
    deployment_name,
    models_dir,
)
from mlops_helpers.seldon_kind.cluster import ENVIRONMENT_LABEL
from mlops_helpers.seldon_kind.gitops import CI_NAME, GitOpsRepo
from mlops_helpers.seldon_kind.local import TEST_ENVIRONMENT
from mlops_helpers.seldon_kind.registry import REGISTRY
from mlops_helpers.seldon_kind.serving import (
    ImageIndex,
    bad_payloads,
    predict,
    sample_payload,
    warm_launcher,
)

SCENARIO = "seldon_kind"
#: every rendered manifest names the unit-test run that passed its model folders: a new
#: pipeline run is a new change to review, even for the same models
TESTED_BY = "mlops-workshop/unit-tests"


def _need(ctx: StageContext, key: str, stage: str) -> Any:
    value = ctx.state.get(key)
    if not value:
        raise StageError(f"no {key.replace('_', ' ')} in {ctx.run_dir}: run {stage} first")
    return value


def repo(ctx: StageContext) -> GitOpsRepo:
    return GitOpsRepo(ctx.run_dir / "gitops").ensure()


def namespace(ctx: StageContext, env: str) -> str:
    return ctx.settings.name(f"seldon-{env}")


def release(ctx: StageContext) -> dict[str, str]:
    """What is being promoted: deployment -> model version @ image (the manifests' content)."""
    models = _need(ctx, "models", "train")
    images = _need(ctx, "images", "build")
    return {d.name: f"{models[d.name]['version']}@{images[d.folder]['tag']}" for d in DEPLOYMENTS}


def render_release(ctx: StageContext, env: str) -> dict[str, str]:
    """The manifests of the current release for ``env``: file name -> YAML text."""
    models = _need(ctx, "models", "train")
    images = _need(ctx, "images", "build")
    ns = namespace(ctx, env)
    claim = ctx.settings.name("seldon-models")
    # the environment label lets `kubectl apply --prune` (kind backend) find what to remove
    env_label = {ENVIRONMENT_LABEL: env}
    space = manifests.namespace(ns)
    space["metadata"]["labels"].update(env_label)
    files = {"00-namespace.yaml": manifests.dump(space)}
    root = models_dir(ctx.settings)
    for dep in DEPLOYMENTS:
        model = models[dep.name]
        doc = manifests.render(
            root / dep.folder / "seldondeployment.yaml",
            {
                "deployment": deployment_name(ctx.settings, dep),
                "model": dep.name,
                "version": model["version"],
                "replicas": ctx.settings.replicas,
                "model_uri": f"pvc://{claim}/{dep.name}/{model['version']}",
                "image": images[dep.folder]["ref"],
            },
        )
        doc["metadata"]["namespace"] = ns
        doc["metadata"]["labels"].update(env_label)
        doc["metadata"]["annotations"] = {TESTED_BY: _need(ctx, "unit_tests", "unit_tests")["id"]}
        files[f"{dep.name}.yaml"] = manifests.dump(doc)
    return files


def _validated(ctx: StageContext, env: str, files: dict[str, str]) -> None:
    """Write the manifests to a scratch folder and refuse the lot if one is invalid."""
    folder = ctx.run_dir / "manifests" / env
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    manifests.refuse_invalid(folder, f"{env} ({folder})")


def _targets(ctx: StageContext) -> list[dict[str, Any]]:
    models = _need(ctx, "models", "train")
    return [
        {
            "name": deployment_name(ctx.settings, d),
            "payload": sample_payload(models[d.name]["meta"]),
            "bad": bad_payloads(models[d.name]["meta"]),
        }
        for d in DEPLOYMENTS
    ]


# -- stages -------------------------------------------------------------------------------
def unit_tests(ctx: StageContext) -> dict[str, Any]:
    """Gate: every model folder's own tests, in the Seldon environment."""
    root = models_dir(ctx.settings)
    results = modelwork.unit_test_all(ctx.backend.python, root, FOLDERS, ctx.run_dir / "logs")
    passed = all(r["passed"] for r in results.values())
    # a new id per run: later stages, in other processes, check they promote what *this*
    # run tested; a failed run replaces the record, so nothing opened before it is approved
    run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(3)}"
    ctx.state.update(
        unit_tests={
            "passed": passed,
            "id": run_id,
            "sources": {n: r["source"] for n, r in results.items()},
        }
    )
    for name, result in results.items():
        ctx.say(f"  {name}: {'passed' if result['passed'] else 'FAILED'} ({result['summary']})")
    if not passed:
        failed = [
            f"{n} ({r['summary']}; log {r['log']})" for n, r in results.items() if not r["passed"]
        ]
        raise GateFailed(
            f"unit tests failed in {', '.join(failed)}: nothing is trained or promoted"
        )
    return {"passed": True, "folders": results}


def _tested_sources(ctx: StageContext) -> dict[str, Any]:
    """The folders must be exactly the ones whose tests passed; returns that gate record."""
    tested: dict[str, Any] = ctx.state.get("unit_tests") or {}
    root = models_dir(ctx.settings)
    current = {n: modelwork.tested_digest(root / n) for n in FOLDERS}
    if not tested.get("passed") or tested.get("sources") != current:
        raise GateFailed("these model folders have not passed their unit tests: run unit_tests")
    return tested


def train(ctx: StageContext) -> dict[str, Any]:
    _tested_sources(ctx)
    root = models_dir(ctx.settings)
    fill = {
        "corpus": str(corpus_path()),
        "c": str(ctx.settings.news_c),
    }
    trained = modelwork.train_all(
        ctx.backend.python,
        root,
        DEPLOYMENTS,
        ctx.run_dir / "model-store",
        fill,
        ctx.run_dir / "logs",
    )
    models = {m["deployment"]: m for m in trained}
    ctx.state.update(models=models)
    for m in trained:
        how = "same inputs as before: reused" if m["reused"] else f"trained in {m['seconds']}s"
        ctx.say(
            f"  {m['deployment']}: version {m['version']} ({how}), held-out accuracy "
            f"{m['meta']['accuracy']:.3f} (higher is better)"
        )
    return {"models": models}


def build(ctx: StageContext) -> dict[str, Any]:
    """Package each model folder as an image (the embedded model goes into its image)."""
    _tested_sources(ctx)
    models = _need(ctx, "models", "train")
    root = models_dir(ctx.settings)
    images_dir = ctx.run_dir / "images"
    index = ImageIndex(images_dir)
    embedded = {d.folder: models[d.name]["path"] for d in DEPLOYMENTS if d.embedded}
    images = {}
    prepackaged = {folder: impl for impl, folder in PREPACKAGED.items()}  # one per folder
    for name, folder in FOLDERS.items():
        extra = embedded.get(name)
        image = modelwork.build_image(
            root, folder, images_dir, None if extra is None else Path(extra)
        )
        index.add(image["ref"], image["path"], prepackaged.get(name))
        images[name] = image
        ctx.say(f"  {image['ref']} ({folder.style})")
    ctx.state.update(images=images)
    return {"images": images}


def serve_local(ctx: StageContext) -> dict[str, Any]:
    """Start every deployment locally (the test environment) and predict from each."""
    files = render_release(ctx, TEST_ENVIRONMENT)
    # the warm launcher (a process that imports seldon-core once; it serves no manifest)
    # starts while the manifests are validated (the validators load their schemas). No model
    # server starts before the manifests pass.
    with ThreadPoolExecutor(max_workers=1) as pool:
        launcher = pool.submit(warm_launcher(ctx, ctx.backend.python).url)
        _validated(ctx, TEST_ENVIRONMENT, files)  # refused: the pool still waits for it
        launcher.result()
    report = ctx.backend.environment(TEST_ENVIRONMENT).apply(files, commit=None)
    predictions = {}
    for target in _targets(ctx):
        url = report["deployments"][target["name"]]["url"]
        status, body = predict(url, target["payload"])
        if status != 200:
            raise StageError(f"{target['name']} answered {status}: {body}")
        predictions[target["name"]] = {"url": url, "request": target["payload"], "response": body}
        answer = [round(x, 3) if isinstance(x, float) else x for x in body["data"]["ndarray"][0]]
        ctx.say(f"  {target['name']} at {url}: {answer}")
    return {"environment": report, "predictions": predictions}


def integration_test(ctx: StageContext) -> dict[str, Any]:
    """Gate: SeldonClient end to end, and every malformed request gets a 4xx."""
    files = render_release(ctx, TEST_ENVIRONMENT)
    report = ctx.backend.integration_test(files, _targets(ctx))
    passed = bool(report.get("passed"))
    ctx.state.update(
        integration={"passed": passed, "release": release(ctx), "backend": ctx.settings.backend}
    )
    for result in report.get("results", []):
        ctx.say(
            f"  {result['name']}: {'passed' if result['passed'] else 'FAILED'} "
            f"{'; '.join(result['problems'])}"
        )
    if not passed:
        raise GateFailed("the integration test failed: nothing is promoted")
    return report


def _tested_release(ctx: StageContext) -> dict[str, str]:
    _tested_sources(ctx)
    current = release(ctx)
    integration = ctx.state.get("integration") or {}
    if not integration.get("passed") or integration.get("release") != current:
        raise GateFailed(
            "this release has not passed the integration test: run "
            "integration_test before promoting"
        )
    return current


def smoke_test(ctx: StageContext, env: str, deployments: dict[str, Any]) -> dict[str, int]:
    """One prediction from every deployment ``env`` serves (local servers or, on the kind
    backend, the cluster through its port-forwards); any answer but 200 stops the stage."""
    payloads = {t["name"]: t["payload"] for t in _targets(ctx)}
    answers = {}
    for name, entry in deployments.items():
        try:
            status, body = predict(entry["url"], payloads[name])
        except OSError as exc:  # refused, reset, timed out
            status, body = 0, f"no answer ({exc})"
        if status != 200:
            raise StageError(
                f"{env} smoke test: {name} at {entry['url']} answered {status}: {str(body)[:200]}"
            )
        answers[name] = status
    return answers


def reconcile(ctx: StageContext, env: str) -> dict[str, Any]:
    """Make ``env``'s servers match its folder at the remote's head (Argo CD's sync), then
    smoke-test what it serves."""
    gitops = repo(ctx)
    head = gitops.head()
    report = ctx.backend.environment(env).apply(gitops.read_environment(env), commit=head)
    ctx.say(
        f"  {env} synced to {head[:8]}: started {report['started'] or '-'}, "
        f"kept {report['kept'] or '-'}, stopped {report['stopped'] or '-'}"
    )
    report["smoke"] = smoke_test(ctx, env, report["deployments"])
    return report


def promote_staging(ctx: StageContext) -> dict[str, Any]:
    """Automatic: validated manifests committed and pushed to staging/, then reconciled."""
    current = _tested_release(ctx)
    files = render_release(ctx, "staging")
    _validated(ctx, "staging", files)
    gitops = repo(ctx)
    gitops.sync_main()
    gitops.write_environment("staging", files)
    summary = ", ".join(f"{n} {v.split('@')[0]}" for n, v in current.items())
    commit = gitops.commit_and_push(f"staging: {summary}")
    ctx.say(f"  staging commit {commit[:8]}" if commit else "  staging already at this release")
    ctx.state.update(staging={"release": current, "commit": gitops.head()})
    return {"commit": commit, "release": current, "reconcile": reconcile(ctx, "staging")}


def open_production_change(ctx: StageContext) -> dict[str, Any]:
    """A branch with the production manifests and a description; main is not touched."""
    staging = _need(ctx, "staging", "promote_staging")
    if staging["release"] != _tested_release(ctx):
        raise GateFailed("staging does not run this release yet: run promote_staging first")
    files = render_release(ctx, "production")
    _validated(ctx, "production", files)
    gitops = repo(ctx)
    superseded = ctx.state.get("change")
    if superseded and superseded["branch"] in gitops.branches():
        gitops.delete_branch(superseded["branch"])  # a newer run replaces an unapproved change
        ctx.say(f"  closed {superseded['branch']}: this run's change replaces it")
    if gitops.read_environment("production") == files:
        ctx.state.update(change=None)
        ctx.say("  production already runs this release: no change to open")
        return {"opened": False, "reconcile": reconcile(ctx, "production")}
    branch = f"promote-production-{staging['commit'][:8]}"
    gitops.start_branch(branch)
    gitops.write_environment("production", files)
    description = gitops.work / "changes" / f"{branch}.md"
    description.parent.mkdir(exist_ok=True)
    lines = [
        f"# Promote staging {staging['commit'][:8]} to production",
        "",
        "| deployment | model version | image |",
        "|---|---|---|",
    ]
    images = _need(ctx, "images", "build")
    for dep in DEPLOYMENTS:
        version = staging["release"][dep.name].split("@")[0]
        lines.append(
            f"| {deployment_name(ctx.settings, dep)} | {version} | {images[dep.folder]['ref']} |"
        )
    tested = _tested_sources(ctx)
    lines += [
        "",
        f"Unit tests: passed (run {tested['id']}). "
        f"Integration test ({ctx.settings.backend}): passed.",
        f"Staging has served this release since {staging['commit'][:8]}.",
        "",
        "Merging needs an approval (`mlops-workshop seldon_kind approve_production`).",
    ]
    description.write_text("\n".join(lines) + "\n")
    commit = gitops.commit_and_push(
        f"Promote staging {staging['commit'][:8]} to production", branch
    )
    gitops.sync_main()
    change = {
        "branch": branch,
        "commit": commit,
        "release": staging["release"],
        "description": f"changes/{branch}.md",
        "unit_tests": tested["id"],
        "sources": tested["sources"],
    }
    ctx.state.update(change=change)
    ctx.say(f"  opened {branch} ({commit[:8] if commit else '-'}); production waits for approval")
    return {"opened": True, **change, "reconcile": reconcile(ctx, "production")}


def _still_tested(ctx: StageContext, change: dict[str, Any], gitops: GitOpsRepo) -> None:
    """Approve only what the gates passed: the unit-test run the change was opened under is
    still the latest one and passed, the model folders are the ones it tested, and the branch
    holds exactly the commit that was opened (nothing pushed to it since)."""
    branch = change["branch"]
    tested = ctx.state.get("unit_tests") or {}
    if tested.get("id") != change.get("unit_tests"):
        verdict = "passed" if tested.get("passed") else "FAILED"
        raise GateFailed(
            f"{branch} was opened under unit-test run {change.get('unit_tests')}; "
            f"a later run ({tested.get('id')}) {verdict}: it cannot be approved. "
            f"Run the pipeline again to open a new change"
        )
    try:
        _tested_sources(ctx)
    except GateFailed:
        raise GateFailed(
            f"the model folders changed after {branch} was opened: it cannot be "
            f"approved. Run the pipeline again to open a new change"
        ) from None
    head = gitops.head(f"refs/heads/{branch}")
    if head != change["commit"]:
        raise GateFailed(
            f"{branch} moved after it was opened (now {head[:8]}, opened at "
            f"{str(change['commit'])[:8]}): only the tested change can be approved"
        )


def approve_production(ctx: StageContext) -> dict[str, Any]:
    """The approval: merge the change branch (the merge records the approver), reconcile."""
    change = ctx.state.get("change")
    if not change:
        ctx.say("  no open production change: nothing to approve")
        return {"approved": False, "reconcile": reconcile(ctx, "production")}
    approver = str(ctx.settings.approver or "").strip()
    # YAML's empty values, as a -p value or an environment variable, name nobody
    if not approver or approver == CI_NAME or approver.lower() in {"null", "none", "~"}:
        raise GateFailed(
            f"a production change needs an approver other than the CI "
            f"({CI_NAME}); set the 'approver' setting"
        )
    gitops = repo(ctx)
    if change["branch"] not in gitops.branches():
        raise StageError(f"change branch {change['branch']} is gone from the remote")
    _still_tested(ctx, change, gitops)
    merge = gitops.merge_change(
        change["branch"], approver, f"Merge {change['branch']} into production"
    )
    approval = {
        "approver": approver,
        "merge_commit": merge,
        "branch": change["branch"],
        "release": change["release"],
    }
    ctx.state.update(change=None, approval=approval)
    ctx.say(f"  {approver} approved {change['branch']}: merged as {merge[:8]}")
    return {"approved": True, **approval, "reconcile": reconcile(ctx, "production")}


def rollback(ctx: StageContext, env: str) -> dict[str, Any]:
    """Revert the newest commit that changed ``env/`` and reconcile: the previous version
    serves again. Not a pipeline stage: an operator's action, from the notebook or a shell."""
    reverted, commit = repo(ctx).revert_last(env)
    ctx.say(f"  reverted {reverted.short} ({reverted.subject}) as {commit[:8]}")
    return {"reverted": reverted.sha, "commit": commit, "reconcile": reconcile(ctx, env)}


def cleanup(ctx: StageContext) -> dict[str, Any]:
    result = cleanup_stage(ctx, forget=("seldon_launcher",))
    for record in (ctx.run_dir / "environments").glob("*.json"):
        record.unlink()  # their servers are gone; the GitOps repo keeps the history
    return result


PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage(
            "unit_tests", unit_tests, "each model folder's own tests, in the Seldon env", gate=True
        ),
        Stage("train", train, "train the sklearn, linear and news models into artifacts"),
        Stage("build", build, "package each model folder as an image with a content tag"),
        Stage(
            "serve_local",
            serve_local,
            "serve every deployment locally, predict from each",
            environment="test",
        ),
        Stage(
            "integration_test",
            integration_test,
            "SeldonClient end to end (local servers or a KIND cluster); bad input gets 4xx",
            gate=True,
            environment="test",
        ),
        Stage(
            "promote_staging",
            promote_staging,
            "validate manifests, push to staging/, reconcile staging",
            environment="staging",
        ),
        Stage(
            "open_production_change",
            open_production_change,
            "branch + description for production; main untouched",
            environment="production",
        ),
        Stage(
            "approve_production",
            approve_production,
            "the approver merges the change; reconcile production",
            gate=True,
            environment="production",
        ),
        Stage("cleanup", cleanup, "stop every model server this run started"),
    ],
    backends=REGISTRY,
)
