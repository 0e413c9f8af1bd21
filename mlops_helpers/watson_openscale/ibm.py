"""IBM backend: watsonx.ai (Watson Machine Learning) for spaces, models and deployments;
Watson OpenScale for the subscription, payload and feedback logging and the quality monitor.

API key, URLs and instance come from settings (``ibm_api_key``, ``ibm_wml_url``,
``ibm_openscale_url``, ``ibm_service_instance_id``); nothing is literal. The service
provider is looked up by the deployment space (the write-up hard-coded its id), waits are
bounded, and every model, deployment, subscription and created space is tracked for
``cleanup``. The two SDK clients come from ``wml_factory`` and ``wos_factory``, which the
tests replace with recorders.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops_helpers.config import Settings
from mlops_helpers.errors import StageError
from mlops_helpers.extras import require
from mlops_helpers.pipeline import StageContext
from mlops_helpers.resources import teardown_handler
from mlops_helpers.waiting import wait_until
from mlops_helpers.watson_openscale import feedback as feedback_rows
from mlops_helpers.watson_openscale import quality
from mlops_helpers.watson_openscale.base import OpenScaleBackend
from mlops_helpers.watson_openscale.mlflow_repo import digest
from mlops_helpers.watson_openscale.registry import REGISTRY

MODULE = "mlops_helpers.watson_openscale.ibm"
QUALITY = "quality"
# OpenScale's quality metric ids -> ours
METRIC_IDS = {"accuracy": "accuracy", "weighted_f1_measure": "weighted_f1",
              "weighted_precision": "weighted_precision", "weighted_recall": "weighted_recall"}
DEFAULT_SOFTWARE_SPEC = "runtime-24.1-py3.11"
DEFAULT_MODEL_TYPE = "scikit-learn_1.3"


def as_dict(value: Any) -> Any:
    """SDK answers are DetailedResponse, typed models or dicts; give plain dicts."""
    if hasattr(value, "get_result"):
        value = value.get_result()
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return value


def _require_settings(settings: Settings) -> dict[str, Any]:
    why = "the ibm backend needs it"
    return {
        "api_key": settings.require("ibm_api_key", why=why),
        "wml_url": str(settings.require("ibm_wml_url", why=why)),
        "openscale_url": str(settings.require("ibm_openscale_url", why=why)),
        "instance_id": settings.get("ibm_service_instance_id"),
    }


def make_wml(settings: Settings) -> Any:
    ai = require("ibm_watsonx_ai", "ibm")
    conf = _require_settings(settings)
    return ai.APIClient(credentials=ai.Credentials(url=conf["wml_url"],
                                                   api_key=conf["api_key"].reveal()))


def make_wos(settings: Settings) -> Any:
    wos = require("ibm_watson_openscale", "ibm")
    from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

    conf = _require_settings(settings)
    return wos.APIClient(authenticator=IAMAuthenticator(apikey=conf["api_key"].reveal()),
                         service_url=conf["openscale_url"],
                         service_instance_id=conf["instance_id"])


def _by_name(resources: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    found = [r for r in resources if r.get("entity", {}).get("name") == name
             or r.get("metadata", {}).get("name") == name]
    return sorted(found, key=lambda r: r.get("metadata", {}).get("created_at", ""))


@REGISTRY.register("ibm")
class IbmBackend(OpenScaleBackend):
    wml_factory: Any = staticmethod(make_wml)
    wos_factory: Any = staticmethod(make_wos)

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        self.conf = _require_settings(self.settings)
        self.poll_interval = self.settings.get("poll_interval", 5.0, float)
        self._wml: Any = None
        self._wos: Any = None

    @property
    def wml(self) -> Any:
        if self._wml is None:
            self._wml = type(self).wml_factory(self.settings)
        return self._wml

    @property
    def wos(self) -> Any:
        if self._wos is None:
            self._wos = type(self).wos_factory(self.settings)
        return self._wos

    def _track(self, kind: str, rname: str, /, **params: Any) -> None:
        self.ctx.tracker.add(kind, rname, module=MODULE, **params)

    # -- spaces -----------------------------------------------------------------------------
    def ensure_space(self, name: str) -> dict[str, Any]:
        spaces = _by_name(self.wml.spaces.get_details(get_all=True)["resources"], name)
        removed = []
        for extra in spaces[1:]:  # duplicates of the same name: keep the oldest
            self.wml.spaces.delete(extra["metadata"]["id"])
            removed.append(extra["metadata"]["id"])
        created = not spaces
        if created:
            names = self.wml.spaces.ConfigurationMetaNames
            meta: dict[str, Any] = {names.NAME: name}
            cos = self.settings.get("ibm_cos_crn")
            if cos:
                meta[names.STORAGE] = {"resource_crn": str(cos)}
            compute = self.settings.get("ibm_wml_instance_crn")
            if compute:
                meta[names.COMPUTE] = {"name": self.settings.get("ibm_wml_instance_name",
                                                                 "wml"), "crn": str(compute)}
            details = self.wml.spaces.store(meta_props=meta, background_mode=False)
            space_id = details["metadata"]["id"]
            self._track("ibm_space", name, space_id=space_id)
        else:
            space_id = spaces[0]["metadata"]["id"]
        self.wml.set.default_space(space_id)
        return {"space_id": space_id, "name": name, "created": created,
                "removed_duplicates": removed}

    # -- models -----------------------------------------------------------------------------
    def store_model(self, space: dict[str, Any], name: str, model_dir: Path,
                    meta: dict[str, Any]) -> dict[str, Any]:
        import joblib

        self.wml.set.default_space(space["space_id"])
        content = digest(model_dir)
        model = joblib.load(model_dir / "model.joblib")
        names = self.wml.repository.ModelMetaNames
        existing = _by_name(self.wml.repository.get_model_details(get_all=True)["resources"],
                            name)
        props = {names.NAME: name, names.DESCRIPTION: f"digest {content}",
                 names.LABEL_FIELD: meta["label_column"]}
        if not existing:
            spec = self.settings.get("ibm_software_spec", DEFAULT_SOFTWARE_SPEC)
            props.update({
                names.TYPE: self.settings.get("ibm_model_type", DEFAULT_MODEL_TYPE),
                names.SOFTWARE_SPEC_ID: self.wml.software_specifications.get_id_by_name(spec)})
            details = self.wml.repository.store_model(model=model, meta_props=props)
            action = "created"
        else:
            details = existing[0]
            if details["metadata"].get("description") == f"digest {content}":
                action = "unchanged"
            else:  # new content: a new revision of the one model, never a second model
                self.wml.repository.update_model(details["metadata"]["id"], props, model)
                details = self.wml.repository.create_model_revision(details["metadata"]["id"])
                action = "updated"
        model_id = details["metadata"]["id"]
        self._track("ibm_model", name, model_id=model_id, space_id=space["space_id"])
        return {"model_id": model_id, "name": name,
                "version": str(details["metadata"].get("rev", "1")), "action": action,
                "digest": content}

    # -- deployments --------------------------------------------------------------------------
    def deploy(self, space: dict[str, Any], model: dict[str, Any],
               name: str) -> dict[str, Any]:
        deployments = self.wml.deployments
        names = deployments.ConfigurationMetaNames
        found = _by_name(deployments.get_details(get_all=True)["resources"], name)
        asset = {"id": model["model_id"], "rev": model["version"]}
        if not found:
            self.ctx.say(f"[ibm] will create (billed while it exists): online deployment {name} "
                         f"of model {model['name']} in space {space['name']}")
            details = deployments.create(model["model_id"], meta_props={
                names.NAME: name, names.ONLINE: {}, names.ASSET: asset})
            action = "created"
        else:
            details = found[0]
            if details["entity"].get("asset") == asset:
                action = "unchanged"
            else:
                details = deployments.update(details["metadata"]["id"],
                                             changes={names.ASSET: asset})
                action = "updated"
        deployment_id = details["metadata"]["id"]
        self._track("ibm_deployment", name, deployment_id=deployment_id,
                    space_id=space["space_id"])
        ready = wait_until(
            lambda: deployments.get_details(deployment_id),
            what=f"deployment {name}",
            timeout=self.settings.get("deploy_timeout", 600.0, float),
            interval=self.poll_interval,
            until=lambda d: d["entity"]["status"]["state"] == "ready",
            describe=lambda d: d["entity"]["status"]["state"],
            fail_if=lambda d: ("deployment failed" if d["entity"]["status"]["state"] == "failed"
                               else None))
        return {"deployment_id": deployment_id, "name": name, "model_name": model["name"],
                "model_id": model["model_id"], "model_version": model["version"],
                "space_id": space["space_id"],
                "scoring_url": deployments.get_scoring_href(ready), "action": action}

    # -- subscription and monitor -------------------------------------------------------------
    def _data_mart_id(self) -> str:
        if self.conf["instance_id"]:
            return str(self.conf["instance_id"])  # on IBM Cloud the data mart id is the same
        marts = as_dict(self.wos.data_marts.list())["data_marts"]
        if not marts:
            raise StageError("no Watson OpenScale data mart: set one up in the service first")
        return str(marts[0]["metadata"]["id"])

    def _service_provider(self, space_id: str) -> str:
        """The provider bound to this space, found by the space, created only when missing."""
        from ibm_watson_openscale.base_classes.watson_open_scale_v2 import WMLCredentialsCloud
        from ibm_watson_openscale.supporting_classes.enums import ServiceTypes

        found = as_dict(self.wos.service_providers.list(
            deployment_space_id=space_id))["service_providers"]
        if found:
            return str(found[0]["metadata"]["id"])
        added = as_dict(self.wos.service_providers.add(
            name=self.settings.name("wos-provider"),
            service_type=ServiceTypes.WATSON_MACHINE_LEARNING,
            deployment_space_id=space_id, operational_space_id="production",
            credentials=WMLCredentialsCloud(apikey=self.conf["api_key"].reveal(),
                                            url=self.conf["wml_url"], instance_id=None),
            background_mode=False))
        return str(added["metadata"]["id"])

    def subscribe(self, deployment: dict[str, Any], model: dict[str, Any],
                  schema: dict[str, Any], parameters: dict[str, Any],
                  thresholds: list[dict[str, Any]]) -> dict[str, Any]:
        from ibm_watson_openscale.base_classes.watson_open_scale_v2 import (
            Asset,
            AssetDeploymentRequest,
            AssetPropertiesRequest,
            PatchDocument,
            ScoringEndpointRequest,
            SparkStruct,
            Target,
        )
        from ibm_watson_openscale.supporting_classes.enums import (
            AssetTypes,
            DeploymentTypes,
            InputDataType,
            ProblemType,
            TargetTypes,
        )

        data_mart_id = self._data_mart_id()
        provider_id = self._service_provider(deployment["space_id"])
        found = as_dict(self.wos.subscriptions.list(
            data_mart_id=data_mart_id,
            deployment_deployment_id=deployment["deployment_id"]))["subscriptions"]
        if found:
            subscription_id, action = found[0]["metadata"]["id"], "updated"
        else:
            added = as_dict(self.wos.subscriptions.add(
                data_mart_id=data_mart_id, service_provider_id=provider_id,
                asset=Asset(asset_id=model["model_id"], name=model["name"],
                            url=deployment["scoring_url"], asset_type=AssetTypes.MODEL,
                            input_data_type=InputDataType.STRUCTURED,
                            problem_type=ProblemType.MULTICLASS_CLASSIFICATION),
                deployment=AssetDeploymentRequest(
                    deployment_id=deployment["deployment_id"], name=deployment["name"],
                    deployment_type=DeploymentTypes.ONLINE,
                    scoring_endpoint=ScoringEndpointRequest(url=deployment["scoring_url"])),
                asset_properties=AssetPropertiesRequest(
                    label_column=schema["label_column"], feature_fields=schema["feature_fields"],
                    categorical_fields=[], prediction_field="prediction",
                    probability_fields=["probability"],
                    training_data_schema=SparkStruct.from_dict({
                        "type": "struct",
                        "fields": [{"name": f["name"], "type": f["type"], "nullable": False,
                                    "metadata": {}} for f in schema["fields"]]})),
                background_mode=False))
            subscription_id, action = added["metadata"]["id"], "created"
        self._track("ibm_subscription", deployment["name"], subscription_id=subscription_id)
        wait_until(lambda: as_dict(self.wos.subscriptions.get(subscription_id)),
                   what=f"subscription of {deployment['name']}",
                   timeout=self.settings.get("subscription_timeout", 600.0, float),
                   interval=self.poll_interval,
                   until=lambda s: s["entity"]["status"]["state"] == "active",
                   describe=lambda s: s["entity"]["status"]["state"],
                   fail_if=lambda s: ("subscription failed"
                                      if s["entity"]["status"]["state"] == "error" else None))
        monitors = as_dict(self.wos.monitor_instances.list(
            data_mart_id=data_mart_id, monitor_definition_id=QUALITY,
            target_target_id=subscription_id))["monitor_instances"]
        if monitors:
            monitor_id, monitor_action = monitors[0]["metadata"]["id"], "updated"
            self.wos.monitor_instances.update(monitor_id, patch_document=[
                PatchDocument(op="replace", path="/parameters", value=parameters),
                PatchDocument(op="replace", path="/thresholds", value=thresholds)])
        else:
            created = as_dict(self.wos.monitor_instances.create(
                data_mart_id=data_mart_id, monitor_definition_id=QUALITY,
                target=Target(target_type=TargetTypes.SUBSCRIPTION, target_id=subscription_id),
                parameters=parameters, thresholds=thresholds, background_mode=False))
            monitor_id, monitor_action = created["metadata"]["id"], "created"
        return {"subscription_id": subscription_id, "deployment_id": deployment["deployment_id"],
                "data_mart_id": data_mart_id, "service_provider_id": provider_id,
                "label_column": schema["label_column"],
                "feature_fields": schema["feature_fields"], "problem_type": schema["problem_type"],
                "monitor_instance_id": monitor_id, "parameters": parameters,
                "thresholds": thresholds, "action": action, "monitor_action": monitor_action}

    # -- scoring and logs ---------------------------------------------------------------------
    def _data_set(self, subscription: dict[str, Any], kind: str) -> str:
        from ibm_watson_openscale.supporting_classes.enums import TargetTypes

        found = as_dict(self.wos.data_sets.list(
            type=kind, target_target_id=subscription["subscription_id"],
            target_target_type=TargetTypes.SUBSCRIPTION))["data_sets"]
        if not found:
            raise StageError(f"subscription {subscription['subscription_id']} has no {kind} "
                             "data set yet")
        return str(found[0]["metadata"]["id"])

    def score(self, deployment: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        from ibm_watson_openscale.supporting_classes.enums import DataSetTypes
        from ibm_watson_openscale.supporting_classes.payload_record import PayloadRecord

        started = datetime.now(UTC)
        answer = dict(self.wml.deployments.score(deployment["deployment_id"], body))
        if "predictions" not in answer:
            raise StageError(f"deployment {deployment['name']} answered {answer}")
        subscription = self.ctx.state.get("subscription")
        if subscription:  # payload logging, explicitly: the write-up slept and hoped
            elapsed = int((datetime.now(UTC) - started).total_seconds() * 1000)
            self.wos.data_sets.store_records(
                data_set_id=self._data_set(subscription, DataSetTypes.PAYLOAD_LOGGING),
                request_body=[PayloadRecord(request=body, response=answer,
                                            response_time=elapsed)],
                background_mode=False)
        return answer

    def payload_count(self, subscription: dict[str, Any]) -> int:
        from ibm_watson_openscale.supporting_classes.enums import DataSetTypes

        ds = self._data_set(subscription, DataSetTypes.PAYLOAD_LOGGING)
        return int(as_dict(self.wos.data_sets.get_records_count(data_set_id=ds)))

    def log_feedback(self, subscription: dict[str, Any], fields: list[str],
                     rows: list[list[Any]]) -> int:
        from ibm_watson_openscale.supporting_classes.enums import DataSetTypes

        checked = feedback_rows.check(fields, rows, subscription["feature_fields"],
                                      subscription["label_column"])
        values = [[*x, y] for x, y in checked]
        self.wos.data_sets.store_records(
            data_set_id=self._data_set(subscription, DataSetTypes.FEEDBACK),
            request_body=[{"fields": [*subscription["feature_fields"],
                                      subscription["label_column"]], "values": values}],
            background_mode=False)
        return len(values)

    def run_quality_monitor(self, subscription: dict[str, Any]) -> dict[str, Any]:
        monitor_id = subscription["monitor_instance_id"]
        start = datetime.now(UTC) - timedelta(minutes=1)
        run = as_dict(self.wos.monitor_instances.run(monitor_instance_id=monitor_id,
                                                     background_mode=False))
        run_id = run["metadata"]["id"]
        status = run["entity"]["status"]
        if status["state"] != "finished":
            failure = status.get("failure") or {}
            message = "; ".join(e.get("message", "") for e in failure.get("errors", [])) or (
                f"monitor run ended in state {status['state']}")
            short = "feedback" in message.lower() and "min" in message.lower()
            return {"run_id": run_id, "status": "insufficient_feedback" if short else "error",
                    "message": message, "n_rows": 0, "metrics": []}
        measured = as_dict(self.wos.monitor_instances.list_measurements(
            monitor_instance_id=monitor_id, start=start,
            end=datetime.now(UTC) + timedelta(minutes=1), run_id=run_id))["measurements"]
        values: dict[str, float] = {}
        for value in measured[0]["entity"]["values"] if measured else []:
            for metric in value["metrics"]:
                if metric["id"] in METRIC_IDS:
                    values[METRIC_IDS[metric["id"]]] = float(metric["value"])
        if not values:
            return {"run_id": run_id, "status": "error", "n_rows": 0, "metrics": [],
                    "message": "the monitor run finished without quality metrics"}
        metrics = quality.judge(values, subscription["thresholds"])
        failed = quality.failures(metrics)
        return {"run_id": run_id, "status": "finished",
                "message": "; ".join(failed) or "every metric within its threshold",
                "n_rows": int(run["entity"].get("parameters", {}).get("records", 0) or 0),
                "metrics": metrics}


# -- teardown (a later `cleanup` process builds its clients from the same settings) -----------
def _clients() -> tuple[Any, Any]:
    settings = Settings.load("watson_openscale")
    return IbmBackend.wml_factory(settings), IbmBackend.wos_factory(settings)


@teardown_handler("ibm_subscription")
def _teardown_subscription(params: dict[str, Any]) -> None:
    _, wos = _clients()
    wos.subscriptions.delete(params["subscription_id"], background_mode=False)


@teardown_handler("ibm_deployment")
def _teardown_deployment(params: dict[str, Any]) -> None:
    wml, _ = _clients()
    wml.set.default_space(params["space_id"])
    wml.deployments.delete(params["deployment_id"])


@teardown_handler("ibm_model")
def _teardown_model(params: dict[str, Any]) -> None:
    wml, _ = _clients()
    wml.set.default_space(params["space_id"])
    wml.repository.delete(params["model_id"])


@teardown_handler("ibm_space")
def _teardown_space(params: dict[str, Any]) -> None:
    wml, _ = _clients()
    wml.spaces.delete(params["space_id"])
