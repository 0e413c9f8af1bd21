"""Local backend: MLflow registry + a real scoring server + the SQLite monitor.

Nothing is mocked: the model is a registered MLflow model version, the deployment is a
FastAPI process on a free loopback port that loads that version, and the quality monitor
scores the feedback through that deployment over HTTP.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from mlops_helpers.errors import BackendUnavailable, MissingExtraError, StageError
from mlops_helpers.extras import is_installed
from mlops_helpers.launcher_client import WarmLauncher
from mlops_helpers.resources import teardown_handler
from mlops_helpers.servers import ManagedServer, http_json
from mlops_helpers.watson_openscale import feedback as feedback_rows
from mlops_helpers.watson_openscale import payload, quality
from mlops_helpers.watson_openscale.base import OpenScaleBackend
from mlops_helpers.watson_openscale.mlflow_repo import MlflowRepository, digest
from mlops_helpers.watson_openscale.monitor_store import MonitorStore, now
from mlops_helpers.watson_openscale.payload import SCORING_PATH
from mlops_helpers.watson_openscale.registry import REGISTRY, deployment_name

MODULE = "mlops_helpers.watson_openscale.local"
REPO_MODULE = "mlops_helpers.watson_openscale.mlflow_repo"
QUALITY = "quality"


def store_path(run_dir: Path) -> Path:
    return Path(run_dir) / "openscale" / "monitor.db"


@REGISTRY.register("local")
class LocalBackend(OpenScaleBackend):
    poll_interval = 0.05

    def preflight(self, trained_with: str) -> dict[str, Any]:
        """The local backend needs only the mlflow extra (the registry); checked without
        importing it, which the space stage does anyway."""
        if not is_installed("mlflow"):
            raise MissingExtraError("mlflow", "mlflow")
        return {}

    @property
    def repo(self) -> MlflowRepository:
        if not hasattr(self, "_repo"):
            self._repo = MlflowRepository(self.ctx.run_dir)
        return self._repo

    @property
    def store(self) -> MonitorStore:
        return MonitorStore(store_path(self.ctx.run_dir))

    def _track(self, kind: str, rname: str, /, **params: Any) -> None:
        """Record once: a rerun keeps the original order, so teardown stays newest first."""
        tracker = self.ctx.tracker
        known = tracker.get(kind, rname)
        if known is None or known.params.get("experiment_id") != params.get("experiment_id"):
            tracker.add(kind, rname, module=REPO_MODULE, run_dir=str(self.ctx.run_dir), **params)

    # -- spaces -----------------------------------------------------------------------------
    def ensure_space(self, name: str) -> dict[str, Any]:
        # the space's deployment runtime warms up on the other core meanwhile (deploy uses it)
        self.runtime.server(wait=False)
        spaces = self.repo.spaces(name)
        removed = []
        for extra in spaces[1:]:  # the write-up's duplicates: keep the oldest, drop the rest
            self.repo.delete_space(extra.experiment_id)
            removed.append(extra.tags.get("wos.space_id", extra.experiment_id))
        created = not spaces
        experiment_id = self.repo.create_space(name) if created else spaces[0].experiment_id
        experiment = self.repo.client.get_experiment(experiment_id)
        self._track("mlflow_space", name, experiment_id=experiment_id)
        return {
            "space_id": experiment.tags["wos.space_id"],
            "experiment_id": experiment_id,
            "name": name,
            "created": created,
            "removed_duplicates": removed,
            "tracking_uri": self.repo.uri,
        }

    # -- models -----------------------------------------------------------------------------
    def store_model(
        self, space: dict[str, Any], name: str, model_dir: Path, meta: dict[str, Any]
    ) -> dict[str, Any]:
        content = digest(model_dir)
        created = self.repo.ensure_registered_model(name, space["space_id"])
        self._track("mlflow_model", name, name=name)
        existing = self.repo.version_with_digest(name, content)
        if existing is not None:
            version, action = existing, "unchanged"
        else:
            params = {k: v for k, v in meta.items() if isinstance(v, str | int | float)}
            version = self.repo.add_version(
                name, space["experiment_id"], model_dir, params, content
            )
            action = "created" if created else "updated"
        return {
            "model_id": f"{name}/{version.version}",
            "name": name,
            "version": str(version.version),
            "action": action,
            "digest": content,
            "versions": [str(v.version) for v in self.repo.versions(name)],
        }

    # -- deployments --------------------------------------------------------------------------
    def deploy(self, space: dict[str, Any], model: dict[str, Any], name: str) -> dict[str, Any]:
        current = self.ctx.state.get("deployment")
        if current and current["name"] == name:
            running = ManagedServer.from_dict(current["server"]).alive()
            if running and current["model_version"] == model["version"]:
                return {**current, "action": "unchanged"}
        deployment_id = current["deployment_id"] if current else str(uuid.uuid4())
        tracker = self.ctx.tracker
        # blue-green: the new version starts beside the one served now, which stops only
        # once the new one is healthy (a failed deploy leaves it serving)
        same = current and current["name"] == name
        old = ManagedServer.from_dict(current["server"]) if same else None
        folder = self.ctx.run_dir / "deployments" / name / f"v{model['version']}"
        tracker.add("path", f"{name}-files", path=str(folder.parent))
        model_dir = self.repo.download(model["name"], model["version"], folder)
        request = {
            "model_dir": str(model_dir),
            "store": str(store_path(self.ctx.run_dir)),
            "deployment_id": deployment_id,
            "deployment_name": name,
            "model_version": model["version"],
        }
        # forked from the warm runtime: up in a fraction of a second
        server = self.runtime.start(name, request, timeout=60)
        if old is not None:
            old.stop(tracker)
        # a candidate until the quality gate passes; `promote` then moves "deployed" to it
        self.repo.client.set_registered_model_alias(model["name"], "candidate", model["version"])
        record = {
            "deployment_id": deployment_id,
            "name": name,
            "model_name": model["name"],
            "model_version": model["version"],
            "space_id": space["space_id"],
            "scoring_url": server.url + SCORING_PATH.format(deployment_id=deployment_id),
            "server": server.to_dict(),
        }
        self.ctx.state.update(deployment=record)
        return {**record, "action": "updated" if current else "created"}

    @property
    def runtime(self) -> WarmLauncher:
        """The warm runtime (``launcher.py``); it outlives CLI calls, and cleanup stops it.
        The run directory on its command line marks it as this run's process."""
        module = "mlops_helpers.watson_openscale.launcher"
        argv = [sys.executable, "-m", module, "{port}", str(self.ctx.run_dir)]
        name = f"{deployment_name(self.ctx.settings)}-runtime"
        return WarmLauncher(self.ctx, "runtime", name, argv)

    # -- subscription and monitor -------------------------------------------------------------
    def subscribe(
        self,
        deployment: dict[str, Any],
        model: dict[str, Any],
        schema: dict[str, Any],
        parameters: dict[str, Any],
        thresholds: list[dict[str, Any]],
    ) -> dict[str, Any]:
        store = self.store
        known = store.subscriptions()
        subscription, created = store.upsert_subscription(
            deployment_id=deployment["deployment_id"],
            deployment_name=deployment["name"],
            model_name=model["name"],
            model_version=model["version"],
            scoring_url=deployment["scoring_url"],
            label_column=schema["label_column"],
            problem_type=schema["problem_type"],
            feature_fields=schema["feature_fields"],
            training_schema=schema,
        )
        try:
            monitor, monitor_created = store.upsert_monitor(
                subscription["id"], QUALITY, parameters, thresholds
            )
        except Exception:  # all or nothing: no subscription without its monitor
            if created and subscription["id"] not in {k["id"] for k in known}:
                store.delete_subscription(subscription["id"])
            raise
        self.ctx.tracker.add(
            "wos_subscription",
            deployment["name"],
            module=MODULE,
            store=str(store.path),
            subscription_id=subscription["id"],
        )
        return {
            "subscription_id": subscription["id"],
            "deployment_id": deployment["deployment_id"],
            "label_column": subscription["label_column"],
            "feature_fields": subscription["feature_fields"],
            "problem_type": subscription["problem_type"],
            "monitor_instance_id": monitor["id"],
            "parameters": monitor["parameters"],
            "thresholds": monitor["thresholds"],
            "action": "created" if created else "updated",
            "monitor_action": "created" if monitor_created else "updated",
        }

    # -- scoring and logs ---------------------------------------------------------------------
    def score(
        self, deployment: dict[str, Any], body: dict[str, Any], source: str = "client"
    ) -> dict[str, Any]:
        try:
            status, answer = http_json(
                "POST",
                deployment["scoring_url"],
                body,
                timeout=60,
                headers={"X-Scoring-Source": source},
            )
        except OSError as exc:  # refused, reset, timed out: the server is not there
            reason = getattr(exc, "reason", exc)
            raise BackendUnavailable(
                f"deployment {deployment['name']} does not answer at "
                f"{deployment['scoring_url']} ({reason}): its scoring server is not running;"
                " run the deploy stage again"
            ) from None
        if status != 200:
            raise StageError(f"deployment {deployment['name']} answered {status}: {answer}")
        return dict(answer)

    def payload_count(self, subscription: dict[str, Any]) -> int:
        return self.store.payload_count(subscription["deployment_id"])

    def payload_logged(self, subscription: dict[str, Any], bodies: list[dict[str, Any]]) -> int:
        deployment = self.ctx.state.get("deployment") or {}
        return self.store.payload_logged(
            subscription["deployment_id"], str(deployment.get("model_version")), bodies
        )

    def promote(self, model: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
        """Production is the registry's ``deployed`` alias: MLflow clients load
        ``models:/<name>@deployed``, the very version the scoring server serves."""
        client = self.repo.client
        try:
            before = client.get_model_version_by_alias(model["name"], "deployed").version
        except Exception:  # no version carries the alias yet
            before = None
        client.set_registered_model_alias(model["name"], "deployed", model["version"])
        return {
            "model_uri": f"models:/{model['name']}@deployed",
            "version": model["version"],
            "previous": None if before is None else str(before),
            "action": "unchanged" if str(before) == model["version"] else "promoted",
        }

    def log_feedback(
        self, subscription: dict[str, Any], fields: list[str], rows: list[list[Any]]
    ) -> int:
        checked = feedback_rows.check(
            fields, rows, subscription["feature_fields"], subscription["label_column"]
        )
        return self.store.add_feedback(subscription["subscription_id"], checked)

    def run_quality_monitor(
        self, subscription: dict[str, Any], thresholds: list[dict[str, Any]]
    ) -> dict[str, Any]:
        started = now()
        store = self.store
        current = store.monitor(subscription["monitor_instance_id"])
        monitor, _ = store.upsert_monitor(
            current["subscription_id"], QUALITY, current["parameters"], thresholds
        )
        minimum = int(monitor["parameters"]["min_feedback_data_size"])
        limit = int(monitor["parameters"]["max_rows_per_evaluation"])
        available = store.feedback_count(subscription["subscription_id"])
        if available < minimum:
            message = (
                f"only {available} feedback row(s) logged; the quality monitor needs at "
                f"least {minimum} (min_feedback_data_size), so no metric is reported"
            )
            run_id = store.record_run(
                monitor["id"],
                status="insufficient_feedback",
                message=message,
                n_rows=available,
                started=started,
            )
            return {
                "run_id": run_id,
                "status": "insufficient_feedback",
                "message": message,
                "n_rows": available,
                "metrics": [],
            }
        features, labels = store.latest_feedback(subscription["subscription_id"], limit)
        deployment = self.ctx.state.get("deployment") or {}
        if deployment.get("deployment_id") != subscription["deployment_id"]:
            raise StageError("the subscribed deployment is not running: run deploy first")
        predicted: list[int] = []
        for start in range(0, len(features), payload.MAX_ROWS):
            body = payload.from_rows(
                subscription["feature_fields"], features[start : start + payload.MAX_ROWS]
            )
            predicted += payload.predictions(self.score(deployment, body, source="monitor"))[0]
        result = quality.compute(labels, predicted)
        metrics = quality.judge(result["values"], monitor["thresholds"])
        failed = quality.failures(metrics)
        message = "; ".join(failed) if failed else "every metric within its threshold"
        run_id = store.record_run(
            monitor["id"],
            status="finished",
            message=message,
            n_rows=len(labels),
            started=started,
            metrics=metrics,
            confusion_matrix=result["confusion_matrix"],
            labels=result["labels"],
        )
        return {
            "run_id": run_id,
            "status": "finished",
            "message": message,
            "n_rows": len(labels),
            "metrics": metrics,
            "confusion_matrix": result["confusion_matrix"],
            "labels": result["labels"],
        }


@teardown_handler("wos_subscription")
def _teardown_subscription(params: dict[str, Any]) -> None:
    path = Path(params["store"])
    if path.is_file():
        MonitorStore(path).delete_subscription(params["subscription_id"])
