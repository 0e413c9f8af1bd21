"""The seldon_kind pipeline: unit tests, training, images, local serving, the integration
test, then GitOps promotion (staging automatic, production through an approved change).
The same stage code runs from the notebook, the CLI and Jenkins.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlops_helpers.errors import GateFailed, StageError
from mlops_helpers.pipeline import Pipeline, Stage, StageContext, cleanup_stage
from mlops_helpers.seldon_kind import kind as _kind  # noqa: F401  (registers "kind")
from mlops_helpers.seldon_kind import local as _local  # noqa: F401  (registers "local")
from mlops_helpers.seldon_kind import manifests, modelwork
from mlops_helpers.seldon_kind.catalog import (
    DEFAULTS,
    DEPLOYMENTS,
    FOLDERS,
    PREPACKAGED,
    corpus_path,
    deployment_name,
    models_dir,
)
from mlops_helpers.seldon_kind.gitops import CI_NAME, GitOpsRepo
from mlops_helpers.seldon_kind.local import TEST_ENVIRONMENT
from mlops_helpers.seldon_kind.registry import REGISTRY
from mlops_helpers.seldon_kind.serving import (
    ImageIndex,
    bad_payloads,
    predict,
    sample_payload,
)

SCENARIO = "seldon_kind"


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
    return {d.name: f"{models[d.name]['version']}@{images[d.folder]['tag']}"
            for d in DEPLOYMENTS}


def render_release(ctx: StageContext, env: str) -> dict[str, str]:
    """The manifests of the current release for ``env``: file name -> YAML text."""
    models = _need(ctx, "models", "train")
    images = _need(ctx, "images", "build")
    ns = namespace(ctx, env)
    claim = ctx.settings.name("seldon-models")
    files = {"00-namespace.yaml": manifests.dump(manifests.namespace(ns))}
    root = models_dir(ctx.settings)
    for dep in DEPLOYMENTS:
        model = models[dep.name]
        doc = manifests.render(root / dep.folder / "seldondeployment.yaml", {
            "deployment": deployment_name(ctx.settings, dep),
            "model": dep.name,
            "version": model["version"],
            "replicas": ctx.settings.get("replicas", DEFAULTS["replicas"]),
            "model_uri": f"pvc://{claim}/{dep.name}/{model['version']}",
            "image": images[dep.folder]["ref"],
        })
        doc["metadata"]["namespace"] = ns
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
    return [{"name": deployment_name(ctx.settings, d),
             "payload": sample_payload(models[d.name]["meta"]),
             "bad": bad_payloads(models[d.name]["meta"])} for d in DEPLOYMENTS]


# -- stages -------------------------------------------------------------------------------
def unit_tests(ctx: StageContext) -> dict[str, Any]:
    """Gate: every model folder's own tests, in the Seldon environment."""
    root = models_dir(ctx.settings)
    results = modelwork.unit_test_all(ctx.backend.python, root, FOLDERS, ctx.run_dir / "logs")
    passed = all(r["passed"] for r in results.values())
    ctx.state.update(unit_tests={"passed": passed,
                                 "sources": {n: r["source"] for n, r in results.items()}})
    for name, result in results.items():
        ctx.say(f"  {name}: {'passed' if result['passed'] else 'FAILED'} ({result['summary']})")
    if not passed:
        failed = [f"{n} ({r['summary']}; log {r['log']})" for n, r in results.items()
                  if not r["passed"]]
        raise GateFailed(f"unit tests failed in {', '.join(failed)}: nothing is trained or "
                         f"promoted")
    return {"passed": True, "folders": results}


def _tested_sources(ctx: StageContext) -> None:
    """The folders must be exactly the ones whose tests passed."""
    tested = ctx.state.get("unit_tests") or {}
    root = models_dir(ctx.settings)
    current = {n: modelwork.digest(root / n) for n in FOLDERS}
    if not tested.get("passed") or tested.get("sources") != current:
        raise GateFailed("these model folders have not passed their unit tests: run unit_tests")


def train(ctx: StageContext) -> dict[str, Any]:
    _tested_sources(ctx)
    root = models_dir(ctx.settings)
    fill = {"corpus": str(corpus_path()), "c": str(ctx.settings.get("news_c",
                                                                    DEFAULTS["news_c"], float))}
    store = ctx.run_dir / "model-store"
    python = ctx.backend.python
    with ThreadPoolExecutor(max_workers=len(DEPLOYMENTS)) as pool:
        trained = list(pool.map(lambda d: modelwork.train(python, root, d, store, fill,
                                                          ctx.run_dir / "logs"), DEPLOYMENTS))
    models = {m["deployment"]: m for m in trained}
    ctx.state.update(models=models)
    for m in trained:
        ctx.say(f"  {m['deployment']}: version {m['version']}, "
                f"accuracy {m['meta']['accuracy']:.3f}")
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
        image = modelwork.build_image(root, folder, images_dir,
                                      None if extra is None else Path(extra))
        index.add(image["ref"], image["path"], prepackaged.get(name))
        images[name] = image
        ctx.say(f"  {image['ref']} ({folder.style})")
    ctx.state.update(images=images)
    return {"images": images}


def serve_local(ctx: StageContext) -> dict[str, Any]:
    """Start every deployment locally (the test environment) and predict from each."""
    files = render_release(ctx, TEST_ENVIRONMENT)
    _validated(ctx, TEST_ENVIRONMENT, files)
    report = ctx.backend.environment(TEST_ENVIRONMENT).apply(files, commit=None)
    predictions = {}
    for target in _targets(ctx):
        url = report["deployments"][target["name"]]["url"]
        status, body = predict(url, target["payload"])
        if status != 200:
            raise StageError(f"{target['name']} answered {status}: {body}")
        predictions[target["name"]] = {"url": url, "request": target["payload"],
                                       "response": body}
        ctx.say(f"  {target['name']} at {url}: {body['data']['ndarray'][0]}")
    return {"environment": report, "predictions": predictions}


def integration_test(ctx: StageContext) -> dict[str, Any]:
    """Gate: SeldonClient end to end, and every malformed request gets a 4xx."""
    files = render_release(ctx, TEST_ENVIRONMENT)
    report = ctx.backend.integration_test(files, _targets(ctx))
    passed = bool(report.get("passed"))
    ctx.state.update(integration={"passed": passed, "release": release(ctx),
                                  "backend": ctx.settings.backend})
    for result in report.get("results", []):
        ctx.say(f"  {result['name']}: {'passed' if result['passed'] else 'FAILED'} "
                f"{'; '.join(result['problems'])}")
    if not passed:
        raise GateFailed("the integration test failed: nothing is promoted")
    return report


def _tested_release(ctx: StageContext) -> dict[str, str]:
    _tested_sources(ctx)
    current = release(ctx)
    integration = ctx.state.get("integration") or {}
    if not integration.get("passed") or integration.get("release") != current:
        raise GateFailed("this release has not passed the integration test: run "
                         "integration_test before promoting")
    return current


def reconcile(ctx: StageContext, env: str) -> dict[str, Any]:
    """Make ``env``'s servers match its folder at the remote's head (Argo CD's sync)."""
    gitops = repo(ctx)
    head = gitops.head()
    report = ctx.backend.environment(env).apply(gitops.read_environment(env), commit=head)
    ctx.say(f"  {env} synced to {head[:8]}: started {report['started'] or '-'}, "
            f"kept {report['kept'] or '-'}, stopped {report['stopped'] or '-'}")
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
    if gitops.read_environment("production") == files:
        ctx.state.update(change=None)
        ctx.say("  production already runs this release: no change to open")
        return {"opened": False, "reconcile": reconcile(ctx, "production")}
    branch = f"promote-production-{staging['commit'][:8]}"
    gitops.start_branch(branch)
    gitops.write_environment("production", files)
    description = gitops.work / "changes" / f"{branch}.md"
    description.parent.mkdir(exist_ok=True)
    lines = [f"# Promote staging {staging['commit'][:8]} to production", "",
             "| deployment | model version | image |", "|---|---|---|"]
    images = _need(ctx, "images", "build")
    for dep in DEPLOYMENTS:
        version = staging["release"][dep.name].split("@")[0]
        lines.append(f"| {deployment_name(ctx.settings, dep)} | {version} | "
                     f"{images[dep.folder]['ref']} |")
    lines += ["", f"Unit tests: passed. Integration test ({ctx.settings.backend}): passed.",
              f"Staging has served this release since {staging['commit'][:8]}.", "",
              "Merging needs an approval (`mlops-workshop seldon_kind approve_production`)."]
    description.write_text("\n".join(lines) + "\n")
    commit = gitops.commit_and_push(f"Promote staging {staging['commit'][:8]} to production",
                                    branch)
    gitops.sync_main()
    change = {"branch": branch, "commit": commit, "release": staging["release"],
              "description": f"changes/{branch}.md"}
    ctx.state.update(change=change)
    ctx.say(f"  opened {branch} ({commit[:8] if commit else '-'}); production waits "
            f"for approval")
    return {"opened": True, **change, "reconcile": reconcile(ctx, "production")}


def approve_production(ctx: StageContext) -> dict[str, Any]:
    """The approval: merge the change branch (the merge records the approver), reconcile."""
    change = ctx.state.get("change")
    if not change:
        ctx.say("  no open production change: nothing to approve")
        return {"approved": False, "reconcile": reconcile(ctx, "production")}
    approver = str(ctx.settings.get("approver", DEFAULTS["approver"]) or "").strip()
    if not approver or approver == CI_NAME:
        raise GateFailed(f"a production change needs an approver other than the CI "
                         f"({CI_NAME}); set the 'approver' setting")
    gitops = repo(ctx)
    if change["branch"] not in gitops.branches():
        raise StageError(f"change branch {change['branch']} is gone from the remote")
    merge = gitops.merge_change(change["branch"], approver,
                                f"Merge {change['branch']} into production")
    approval = {"approver": approver, "merge_commit": merge, "branch": change["branch"],
                "release": change["release"]}
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
    result = cleanup_stage(ctx)
    for record in (ctx.run_dir / "environments").glob("*.json"):
        record.unlink()  # their servers are gone; the GitOps repo keeps the history
    return result


PIPELINE = Pipeline(
    scenario=SCENARIO,
    stages=[
        Stage("unit_tests", unit_tests, "each model folder's own tests, in the Seldon env",
              gate=True),
        Stage("train", train, "train the sklearn, linear and news models into artifacts"),
        Stage("build", build, "package each model folder as an image with a content tag"),
        Stage("serve_local", serve_local, "serve every deployment locally, predict from each",
              environment="test"),
        Stage("integration_test", integration_test,
              "SeldonClient end to end (local servers or a KIND cluster); bad input gets 4xx",
              gate=True, environment="test"),
        Stage("promote_staging", promote_staging,
              "validate manifests, push to staging/, reconcile staging", environment="staging"),
        Stage("open_production_change", open_production_change,
              "branch + description for production; main untouched", environment="production"),
        Stage("approve_production", approve_production,
              "the approver merges the change; reconcile production",
              gate=True, environment="production"),
        Stage("cleanup", cleanup, "stop every model server this run started"),
    ],
    backends=REGISTRY,
    defaults=DEFAULTS,
)
