"""Fakes at the SDK boundary: ibm-watsonx-ai's APIClient and ibm-watson-openscale's APIClient.

They keep just enough state (spaces, models, deployments, subscriptions, monitors, data
sets) for find-or-create to be tested, answer in the SDKs' documented shapes, and record
every call in order, so a test can check the call sequence.
"""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids):04d}"


class Calls(list[str]):
    def names(self) -> list[str]:
        return list(self)


class _Part:
    def __init__(self, calls: Calls, prefix: str) -> None:
        self.calls = calls
        self.prefix = prefix

    def _call(self, name: str) -> None:
        self.calls.append(f"{self.prefix}.{name}")


class _MetaNames:
    NAME = "name"
    DESCRIPTION = "description"
    STORAGE = "storage"
    COMPUTE = "compute"
    TYPE = "type"
    SOFTWARE_SPEC_ID = "software_spec"
    LABEL_FIELD = "label_column"
    ONLINE = "online"
    ASSET = "asset"


class FakeWml:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.spaces_db: list[dict[str, Any]] = []
        self.models_db: list[dict[str, Any]] = []
        self.deployments_db: list[dict[str, Any]] = []
        self.scored: list[dict[str, Any]] = []
        self.deploy_states = ["initializing", "ready"]
        self.spaces = _Spaces(self)
        self.set = _Set(self)
        self.repository = _Repository(self)
        self.software_specifications = _SoftwareSpecs(self)
        self.deployments = _Deployments(self)

    def add_space(self, name: str, created_at: str) -> str:
        sid = _new_id("space")
        self.spaces_db.append({"metadata": {"id": sid, "created_at": created_at},
                               "entity": {"name": name}})
        return sid


class _Spaces(_Part):
    ConfigurationMetaNames = _MetaNames

    def __init__(self, wml: FakeWml) -> None:
        super().__init__(wml.calls, "wml.spaces")
        self.wml = wml

    def get_details(self, get_all: bool = False) -> dict[str, Any]:
        self._call("get_details")
        return {"resources": list(self.wml.spaces_db)}

    def store(self, meta_props: dict[str, Any], background_mode: bool = True) -> dict[str, Any]:
        self._call("store")
        sid = self.wml.add_space(meta_props["name"], "2026-11-23T12:00:00Z")
        return self.wml.spaces_db[-1] if sid else {}

    def delete(self, space_id: str) -> str:
        self._call("delete")
        self.wml.spaces_db = [s for s in self.wml.spaces_db if s["metadata"]["id"] != space_id]
        return "SUCCESS"


class _Set(_Part):
    def __init__(self, wml: FakeWml) -> None:
        super().__init__(wml.calls, "wml.set")

    def default_space(self, space_id: str) -> str:
        self._call("default_space")
        return "SUCCESS"


class _SoftwareSpecs(_Part):
    def __init__(self, wml: FakeWml) -> None:
        super().__init__(wml.calls, "wml.software_specifications")

    def get_id_by_name(self, name: str) -> str:
        self._call("get_id_by_name")
        return f"spec-{name}"


class _Repository(_Part):
    ModelMetaNames = _MetaNames

    def __init__(self, wml: FakeWml) -> None:
        super().__init__(wml.calls, "wml.repository")
        self.wml = wml

    def get_model_details(self, get_all: bool = False) -> dict[str, Any]:
        self._call("get_model_details")
        return {"resources": list(self.wml.models_db)}

    def store_model(self, model: Any, meta_props: dict[str, Any]) -> dict[str, Any]:
        self._call("store_model")
        assert hasattr(model, "predict_proba"), "the trained model object is uploaded"
        record = {"metadata": {"id": _new_id("model"), "name": meta_props["name"],
                               "description": meta_props["description"], "rev": "1",
                               "created_at": "2026-11-23T12:00:00Z"},
                  "entity": {"type": meta_props["type"],
                             "software_spec": {"id": meta_props["software_spec"]}}}
        self.wml.models_db.append(record)
        return record

    def update_model(self, model_id: str, props: dict[str, Any], model: Any) -> dict[str, Any]:
        self._call("update_model")
        record = next(m for m in self.wml.models_db if m["metadata"]["id"] == model_id)
        record["metadata"]["description"] = props["description"]
        return record

    def create_model_revision(self, model_id: str) -> dict[str, Any]:
        self._call("create_model_revision")
        record = next(m for m in self.wml.models_db if m["metadata"]["id"] == model_id)
        record["metadata"]["rev"] = str(int(record["metadata"]["rev"]) + 1)
        return record

    def delete(self, model_id: str) -> str:
        self._call("delete")
        self.wml.models_db = [m for m in self.wml.models_db if m["metadata"]["id"] != model_id]
        return "SUCCESS"


class _Deployments(_Part):
    ConfigurationMetaNames = _MetaNames

    def __init__(self, wml: FakeWml) -> None:
        super().__init__(wml.calls, "wml.deployments")
        self.wml = wml
        self.polls = 0

    def get_details(self, deployment_id: str | None = None,
                    get_all: bool = False) -> dict[str, Any]:
        self._call("get_details")
        if deployment_id is None:
            return {"resources": list(self.wml.deployments_db)}
        record = next(d for d in self.wml.deployments_db if d["metadata"]["id"] == deployment_id)
        self.polls += 1
        states = self.wml.deploy_states
        record["entity"]["status"]["state"] = states[min(self.polls, len(states)) - 1]
        return record

    def create(self, artifact_id: str, meta_props: dict[str, Any]) -> dict[str, Any]:
        self._call("create")
        did = _new_id("deployment")
        record = {"metadata": {"id": did, "name": meta_props["name"]},
                  "entity": {"name": meta_props["name"], "asset": meta_props["asset"],
                             "status": {"state": "initializing",
                                        "online_url": {"url": f"scoring/{did}/predictions"}}}}
        self.wml.deployments_db.append(record)
        self.polls = 0
        return record

    def update(self, deployment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        self._call("update")
        record = next(d for d in self.wml.deployments_db if d["metadata"]["id"] == deployment_id)
        record["entity"]["asset"] = changes["asset"]
        self.polls = 0
        return record

    @staticmethod
    def get_scoring_href(details: dict[str, Any]) -> str:
        return str(details["entity"]["status"]["online_url"]["url"])

    def score(self, deployment_id: str, meta_props: dict[str, Any]) -> dict[str, Any]:
        self._call("score")
        self.wml.scored.append(meta_props)
        rows = meta_props["input_data"][0]["values"]
        return {"predictions": [{"fields": ["prediction", "probability"],
                                 "values": [[1, [0.0, 1.0] + [0.0] * 8] for _ in rows]}]}

    def delete(self, deployment_id: str) -> str:
        self._call("delete")
        self.wml.deployments_db = [d for d in self.wml.deployments_db
                                   if d["metadata"]["id"] != deployment_id]
        return "SUCCESS"


class FakeWos:
    """Answers as DetailedResponse-like objects with ``get_result()`` (as the SDK does)."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.providers: list[dict[str, Any]] = []
        self.subscriptions_db: list[dict[str, Any]] = []
        self.monitors_db: list[dict[str, Any]] = []
        self.records: dict[str, list[Any]] = {}
        self.accuracy = 0.95
        self.run_failure: str | None = None
        self.data_marts = _Simple(self, "wos.data_marts")
        self.service_providers = _Providers(self)
        self.subscriptions = _Subscriptions(self)
        self.monitor_instances = _Monitors(self)
        self.data_sets = _DataSets(self)


class Answer:
    def __init__(self, result: Any) -> None:
        self.result = result

    def get_result(self) -> Any:
        return self.result


class _Simple(_Part):
    def __init__(self, wos: FakeWos, prefix: str) -> None:
        super().__init__(wos.calls, prefix)
        self.wos = wos

    def list(self) -> Answer:
        self._call("list")
        return Answer({"data_marts": [{"metadata": {"id": "mart-1"}}]})


class _Providers(_Part):
    def __init__(self, wos: FakeWos) -> None:
        super().__init__(wos.calls, "wos.service_providers")
        self.wos = wos

    def list(self, deployment_space_id: str) -> Answer:
        self._call("list")
        return Answer({"service_providers": [
            p for p in self.wos.providers
            if p["entity"]["deployment_space_id"] == deployment_space_id]})

    def add(self, name: str, service_type: str, deployment_space_id: str,
            operational_space_id: str, credentials: Any, background_mode: bool) -> Answer:
        self._call("add")
        assert service_type == "watson_machine_learning" and not background_mode
        record = {"metadata": {"id": _new_id("provider")},
                  "entity": {"name": name, "deployment_space_id": deployment_space_id}}
        self.wos.providers.append(record)
        return Answer(record)


class _Subscriptions(_Part):
    def __init__(self, wos: FakeWos) -> None:
        super().__init__(wos.calls, "wos.subscriptions")
        self.wos = wos

    def list(self, data_mart_id: str, deployment_deployment_id: str) -> Answer:
        self._call("list")
        return Answer({"subscriptions": [
            s for s in self.wos.subscriptions_db
            if s["entity"]["deployment"]["deployment_id"] == deployment_deployment_id]})

    def add(self, data_mart_id: str, service_provider_id: str, asset: Any, deployment: Any,
            asset_properties: Any, background_mode: bool) -> Answer:
        self._call("add")
        props = asset_properties.to_dict()
        assert props["label_column"] == "digit" and asset.to_dict()["problem_type"] == \
            "multiclass"
        sid = _new_id("subscription")
        record = {"metadata": {"id": sid},
                  "entity": {"deployment": deployment.to_dict(), "status": {"state": "active"},
                             "service_provider_id": service_provider_id}}
        self.wos.subscriptions_db.append(record)
        for kind in ("payload_logging", "feedback"):
            self.wos.records[f"{kind}:{sid}"] = []
        return Answer(record)

    def get(self, subscription_id: str) -> Answer:
        self._call("get")
        return Answer(next(s for s in self.wos.subscriptions_db
                           if s["metadata"]["id"] == subscription_id))

    def delete(self, subscription_id: str, background_mode: bool = True) -> Answer:
        self._call("delete")
        self.wos.subscriptions_db = [s for s in self.wos.subscriptions_db
                                     if s["metadata"]["id"] != subscription_id]
        return Answer(None)


class _Monitors(_Part):
    def __init__(self, wos: FakeWos) -> None:
        super().__init__(wos.calls, "wos.monitor_instances")
        self.wos = wos

    def list(self, data_mart_id: str, monitor_definition_id: str,
             target_target_id: str) -> Answer:
        self._call("list")
        return Answer({"monitor_instances": [
            m for m in self.wos.monitors_db if m["entity"]["target"]["target_id"]
            == target_target_id and m["entity"]["monitor_definition_id"]
            == monitor_definition_id]})

    def create(self, data_mart_id: str, monitor_definition_id: str, target: Any,
               parameters: dict[str, Any], thresholds: list[dict[str, Any]],
               background_mode: bool) -> Answer:
        self._call("create")
        record = {"metadata": {"id": _new_id("monitor")},
                  "entity": {"monitor_definition_id": monitor_definition_id,
                             "target": target.to_dict(), "parameters": parameters,
                             "thresholds": thresholds}}
        self.wos.monitors_db.append(record)
        return Answer(record)

    def update(self, monitor_instance_id: str, patch_document: list[Any]) -> Answer:
        self._call("update")
        record = next(m for m in self.wos.monitors_db
                      if m["metadata"]["id"] == monitor_instance_id)
        for patch in patch_document:
            record["entity"][patch.path.strip("/")] = patch.value
        return Answer(record)

    def run(self, monitor_instance_id: str, background_mode: bool) -> Answer:
        self._call("run")
        state = "error" if self.wos.run_failure else "finished"
        failure = {"errors": [{"message": self.wos.run_failure}]} if self.wos.run_failure \
            else None
        return Answer({"metadata": {"id": _new_id("run")},
                       "entity": {"status": {"state": state, "failure": failure},
                                  "parameters": {"records": 200}}})

    def list_measurements(self, monitor_instance_id: str, start: Any, end: Any,
                          run_id: str) -> Answer:
        self._call("list_measurements")
        acc = self.wos.accuracy
        return Answer({"measurements": [{"entity": {"values": [{"metrics": [
            {"id": "accuracy", "value": acc, "lower_limit": 0.8},
            {"id": "weighted_f1_measure", "value": acc},
            {"id": "weighted_precision", "value": acc},
            {"id": "weighted_recall", "value": acc},
            {"id": "log_loss", "value": 0.1}]}]}}]})


class _DataSets(_Part):
    def __init__(self, wos: FakeWos) -> None:
        super().__init__(wos.calls, "wos.data_sets")
        self.wos = wos

    def list(self, type: str, target_target_id: str, target_target_type: str) -> Answer:  # noqa: A002
        self._call("list")
        key = f"{type}:{target_target_id}"
        found = [{"metadata": {"id": key}}] if key in self.wos.records else []
        return Answer({"data_sets": found})

    def store_records(self, data_set_id: str, request_body: list[Any],
                      background_mode: bool) -> Answer:
        self._call("store_records")
        self.wos.records[data_set_id].extend(request_body)
        return Answer(None)

    def get_records_count(self, data_set_id: str) -> int:
        self._call("get_records_count")
        return len(self.wos.records[data_set_id])
