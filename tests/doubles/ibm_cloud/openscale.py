"""Watson OpenScale v2, as the double answers it.

Shapes follow IBM's published reference (cloud.ibm.com/apidocs/ai-openscale): every resource
is ``{"metadata": {"id", "url", "created_at"}, "entity": {...}}``; lists are named after the
resource (``{"subscriptions": [...]}``). Routes live under ``/openscale/{instance}/v2``; the
entitlement check is ``GET /v1/entitlements``.

A new subscription is ``preparing`` on its first read and ``active`` after; it gets its
``payload_logging`` and ``feedback`` data sets as OpenScale creates them. A quality run
scores the newest feedback rows through the subscribed deployment's model and measures
accuracy and weighted F1 / precision / recall, or fails when there are fewer rows than
``min_feedback_data_size``.

Records follow ibm-watson-openscale 3.1.11 (the SDK the project locks), whose own code is
the reference for their shapes:
- A data set is a table: every stored row is one record. A payload record (posted as
  ``{"request", "response"}``, or written by WML's automatic payload logging when a
  subscribed deployment scores) becomes one row per scored row: the request's feature
  columns, ``prediction``, ``probability``, ``scoring_id`` (``<id>-<n>``),
  ``scoring_timestamp`` and ``deployment_id``. A feedback record (``{"fields", "values"}``)
  becomes one row per value row, with ``record_id`` and ``record_timestamp`` added.
- ``GET .../records?format=dict`` (the default) answers ``{"records": [{"metadata", "entity":
  {"values": {column: value}}}]}``: ``data_sets.py`` ``get_list_of_records`` reads
  ``record['entity']['values']`` as flat columns, ``DataRecord`` in
  ``base_classes/watson_open_scale_v2.py`` has ``values`` and ``annotations``;
  ``format=list`` answers ``{"records": [{"fields", "values": [[...]]}]}``
  (``DataRecordResponseList``).
- Storing is asynchronous: ``POST .../records`` answers 202 with the ``Location`` of a
  request; the rows become visible only when that request is done
  (``GET .../requests/{id}`` state ``active``, what ``store_records(background_mode=False)``
  waits for). The double lands a store after ``store_polls`` reads of its data set or its
  request (``None``: never), so a client that reads straight after storing sees nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.ibm_cloud.server import ApiError, Reply, Request, Router
from tests.doubles.ibm_cloud.wml import WmlState, new_id, stamp

MONITORS = {
    "quality": [
        "accuracy",
        "weighted_f1_measure",
        "weighted_precision",
        "weighted_recall",
        "area_under_roc",
        "f1_measure",
    ],
    "performance": ["records", "response_time"],
    "model_health": ["payload_size", "records_count"],
    "fairness": ["fairness_value"],
    "drift": ["drift_magnitude", "predicted_accuracy"],
    "drift_v2": ["model_drift", "data_drift"],
    "explainability": ["global_explanation_stability"],
}


@dataclass
class OpenScaleState:
    instance_id: str
    wml: WmlState
    #: GET polls a new subscription answers "preparing" before "active"; None: never active
    subscription_polls: int | None = 1
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    measurements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    #: reads of a data set (its records or a store request) before a store lands; None: never
    store_polls: int | None = 1
    #: store request id -> {"data_set", "rows", "reads"} until it lands
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resource(self, kind: str, rid: str, entity: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {
                "id": rid,
                "url": f"/v2/{kind}/{rid}",
                "created_at": stamp(),
                "modified_at": stamp(),
                "crn": f"crn:double:{kind}:{rid}",
            },
            "entity": entity,
        }

    def data_sets_of(self, subscription_id: str, kind: str | None = None) -> list[str]:
        return [
            d
            for d, ds in self.data_sets.items()
            if ds["entity"]["target"]["target_id"] == subscription_id
            and (kind is None or ds["entity"]["type"] == kind)
        ]

    def payload_logged(self, deployment_id: str, request: Any, response: Any) -> None:
        """WML's automatic payload logging: the rows of every subscribed scoring, stored
        asynchronously like any other store."""
        for sid, sub in self.subscriptions.items():
            if sub["entity"]["deployment"]["deployment_id"] == deployment_id:
                for ds in self.data_sets_of(sid, "payload_logging"):
                    self.store(
                        ds,
                        payload_rows({"request": request, "response": response}, deployment_id),
                    )

    def store(self, data_set_id: str, rows: list[dict[str, Any]]) -> str:
        """Queue rows for a data set; the request id a client polls."""
        rid = new_id()
        self.pending[rid] = {"data_set": data_set_id, "rows": rows, "reads": 0}
        return rid

    def tick(self, data_set_id: str) -> None:
        """A read of the data set: stores queued long enough land."""
        for queued in self.pending.values():
            if (
                queued["data_set"] != data_set_id
                or self.store_polls is None
                or queued.get("landed")
            ):
                continue
            queued["reads"] += 1
            if queued["reads"] > self.store_polls:
                self.records.setdefault(data_set_id, []).extend(queued.pop("rows"))
                queued["landed"] = True

    def landed(self, rid: str) -> bool:
        return bool(self.pending.get(rid, {}).get("landed"))


def payload_rows(record: dict[str, Any], deployment_id: str | None) -> list[dict[str, Any]]:
    """A payload record ``{"request", "response"}`` as the payload table's rows."""
    request, response = record["request"], record["response"]
    block = (request.get("input_data") or [request])[0] if isinstance(request, dict) else {}
    answer = (response.get("predictions") or [response])[0] if isinstance(response, dict) else {}
    fields, rows = block.get("fields"), block.get("values")
    out_fields, outputs = answer.get("fields"), answer.get("values")
    if not (
        isinstance(fields, list)
        and isinstance(rows, list)
        and isinstance(out_fields, list)
        and isinstance(outputs, list)
        and len(rows) == len(outputs)
    ):
        raise ApiError(
            400,
            "invalid_records",
            "a payload record's request and response need fields and one values row each",
        )
    scoring_id = str(record.get("scoring_id") or new_id())
    when = str(record.get("scoring_timestamp") or stamp())
    return [
        {
            **dict(zip(fields, row, strict=True)),
            **dict(zip(out_fields, output, strict=True)),
            "scoring_id": f"{scoring_id}-{n}",
            "scoring_timestamp": when,
            "deployment_id": deployment_id,
        }
        for n, (row, output) in enumerate(zip(rows, outputs, strict=True), start=1)
    ]


def feedback_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A feedback record ``{"fields", "values"}`` (or one flat row) as the table's rows."""
    fields, values = record.get("fields"), record.get("values")
    if fields is None and values is None:  # one row as {column: value}
        return [{**record, "record_id": new_id(), "record_timestamp": stamp()}]
    if not isinstance(fields, list) or not isinstance(values, list):
        raise ApiError(400, "invalid_records", "feedback records are {fields, values} objects")
    return [
        {**dict(zip(fields, row, strict=True)), "record_id": new_id(), "record_timestamp": stamp()}
        for row in values
    ]


def _select(
    items: list[dict[str, Any]], query: dict[str, str], paths: dict[str, str]
) -> list[dict[str, Any]]:
    """Items whose ``entity`` value at each path equals the query parameter, when given."""

    def at(item: dict[str, Any], path: str) -> Any:
        value: Any = item["entity"]
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return [
        i
        for i in items
        if all(str(at(i, path)) == query[param] for param, path in paths.items() if param in query)
    ]


def _body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None


def routes(router: Router, state: OpenScaleState) -> None:
    base = r"/openscale/(?P<instance>[^/]+)/v2"

    def scoped(handler: Any) -> Any:
        def check(request: Request, instance: str, **params: str) -> Reply:
            if instance != state.instance_id:
                raise ApiError(
                    404, "instance_not_found", f"OpenScale instance {instance} does not exist"
                )
            return handler(request, **params)

        return check

    def add(method: str, path: str, handler: Any) -> None:
        router.add(method, base + path, scoped(handler))

    def entitlements(request: Request) -> Reply:
        return Reply(
            200,
            {
                "entitlements": {
                    "ai_openscale": [
                        {
                            "id": state.instance_id,
                            "plan_name": "standard",
                            "name": "openscale-double",
                        }
                    ]
                }
            },
        )

    router.add("GET", r"/v1/entitlements", entitlements)

    # -- data marts, monitor definitions -----------------------------------------------------
    def data_marts(request: Request) -> Reply:
        return Reply(
            200,
            {
                "data_marts": [
                    state.resource(
                        "data_marts",
                        state.instance_id,
                        {
                            "name": "data mart",
                            "internal_database": True,
                            "status": {"state": "active"},
                        },
                    )
                ]
            },
        )

    def definitions(request: Request) -> Reply:
        return Reply(
            200,
            {
                "monitor_definitions": [
                    state.resource(
                        "monitor_definitions",
                        mid,
                        {
                            "name": mid.replace("_", " ").title(),
                            "metrics": [
                                {
                                    "id": m,
                                    "name": m,
                                    "thresholds": [{"type": "lower_limit", "default": 0.8}],
                                }
                                for m in metrics
                            ],
                            "tags": [],
                            "applies_to": {"problem_type": [], "input_data_type": []},
                        },
                    )
                    for mid, metrics in MONITORS.items()
                ]
            },
        )

    add("GET", r"/data_marts", data_marts)
    add("GET", r"/monitor_definitions", definitions)

    # -- service providers ------------------------------------------------------------------
    def list_providers(request: Request) -> Reply:
        return Reply(
            200,
            {
                "service_providers": _select(
                    list(state.providers.values()),
                    request.query,
                    {"deployment_space_id": "deployment_space_id", "service_type": "service_type"},
                )
            },
        )

    def add_provider(request: Request) -> Reply:
        body = _body(request) or {}
        for key in ("name", "service_type", "credentials"):
            if not body.get(key):
                raise ApiError(400, "missing_field", f"{key} is required")
        if body["credentials"].get("apikey") != state.wml.api_key:
            raise ApiError(400, "invalid_credentials", "the WML credentials are not valid")
        pid = new_id()
        entity = {k: v for k, v in body.items() if k != "credentials"}
        state.providers[pid] = state.resource(
            "service_providers", pid, {**entity, "status": {"state": "active"}}
        )
        return Reply(201, state.providers[pid])

    def provider(request: Request, pid: str) -> Reply:
        if pid not in state.providers:
            raise ApiError(404, "not_found", f"service provider {pid} does not exist")
        if request.method == "DELETE":
            del state.providers[pid]
            return Reply(202)
        return Reply(200, state.providers[pid])

    add("GET", r"/service_providers", list_providers)
    add("POST", r"/service_providers", add_provider)
    add("GET", r"/service_providers/(?P<pid>[^/]+)", provider)
    add("DELETE", r"/service_providers/(?P<pid>[^/]+)", provider)

    # -- subscriptions ----------------------------------------------------------------------
    def list_subscriptions(request: Request) -> Reply:
        return Reply(
            200,
            {
                "subscriptions": _select(
                    list(state.subscriptions.values()),
                    request.query,
                    {
                        "data_mart_id": "data_mart_id",
                        "service_provider_id": "service_provider_id",
                        "deployment.deployment_id": "deployment.deployment_id",
                        "asset.asset_id": "asset.asset_id",
                    },
                )
            },
        )

    def add_subscription(request: Request) -> Reply:
        body = _body(request) or {}
        for key in ("data_mart_id", "service_provider_id", "asset", "deployment"):
            if not body.get(key):
                raise ApiError(400, "missing_field", f"{key} is required")
        if body["service_provider_id"] not in state.providers:
            raise ApiError(
                400,
                "invalid_service_provider",
                f"service provider {body['service_provider_id']} does not exist",
            )
        deployment_id = body["deployment"].get("deployment_id")
        if deployment_id not in state.wml.deployments:
            raise ApiError(
                400, "deployment_not_found", f"WML deployment {deployment_id} does not exist"
            )
        sid = new_id()
        state.subscriptions[sid] = state.resource(
            "subscriptions", sid, {**body, "status": {"state": "preparing"}}
        )
        state.polls[sid] = 0
        return Reply(202, state.subscriptions[sid])

    def activate(sid: str) -> None:
        entity = state.subscriptions[sid]["entity"]
        entity["status"] = {"state": "active"}
        for kind in ("payload_logging", "feedback"):
            did = new_id()
            state.data_sets[did] = state.resource(
                "data_sets",
                did,
                {
                    "data_mart_id": state.instance_id,
                    "name": f"{kind} of {sid}",
                    "type": kind,
                    "target": {"target_type": "subscription", "target_id": sid},
                    "data_schema": {"type": "struct", "fields": []},
                    "status": {"state": "active"},
                },
            )
            state.records[did] = []

    def subscription(request: Request, sid: str) -> Reply:
        found = state.subscriptions.get(sid)
        if found is None:
            raise ApiError(404, "not_found", f"subscription {sid} does not exist")
        if request.method == "DELETE":
            for did in state.data_sets_of(sid):
                del state.data_sets[did]
                state.records.pop(did, None)
            for mid in [
                m
                for m, mon in state.monitors.items()
                if mon["entity"]["target"]["target_id"] == sid
            ]:
                del state.monitors[mid]
            del state.subscriptions[sid]
            return Reply(202)
        status = found["entity"]["status"]
        if status["state"] == "preparing" and state.subscription_polls is not None:
            state.polls[sid] += 1
            if state.polls[sid] > state.subscription_polls:
                activate(sid)
        return Reply(200, found)

    add("GET", r"/subscriptions", list_subscriptions)
    add("POST", r"/subscriptions", add_subscription)
    add("GET", r"/subscriptions/(?P<sid>[^/]+)", subscription)
    add("DELETE", r"/subscriptions/(?P<sid>[^/]+)", subscription)

    # -- data sets and records --------------------------------------------------------------
    def list_data_sets(request: Request) -> Reply:
        return Reply(
            200,
            {
                "data_sets": _select(
                    list(state.data_sets.values()),
                    request.query,
                    {
                        "type": "type",
                        "target.target_id": "target.target_id",
                        "target.target_type": "target.target_type",
                    },
                )
            },
        )

    def data_set(request: Request, did: str) -> Reply:
        if did not in state.data_sets:
            raise ApiError(404, "not_found", f"data set {did} does not exist")
        return Reply(200, state.data_sets[did])

    def store_records(request: Request, did: str) -> Reply:
        if did not in state.data_sets:
            raise ApiError(404, "not_found", f"data set {did} does not exist")
        body = _body(request)
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise ApiError(400, "invalid_records", "the body must be a list of records")
        kind = state.data_sets[did]["entity"]["type"]
        deployment = state.subscriptions[state.data_sets[did]["entity"]["target"]["target_id"]][
            "entity"
        ]["deployment"]["deployment_id"]
        rows: list[dict[str, Any]] = []
        try:
            for record in body:
                if kind == "feedback":
                    rows += feedback_rows(record)
                elif "request" in record and "response" in record:
                    rows += payload_rows(record, deployment)
                else:
                    raise ApiError(
                        400, "invalid_records", "payload records need request and response"
                    )
        except ValueError as exc:  # zip(strict=True): a row of the wrong length
            raise ApiError(
                400, "invalid_records", f"a row does not match its fields: {exc}"
            ) from None
        rid = state.store(did, rows)
        return Reply(
            202,
            {"state": "pending", "id": rid},
            {"Location": f"/v2/data_sets/{did}/requests/{rid}"},
        )

    def request_status(request: Request, did: str, rid: str) -> Reply:
        if rid not in state.pending or state.pending[rid]["data_set"] != did:
            raise ApiError(404, "not_found", f"request {rid} of data set {did} does not exist")
        state.tick(did)
        return Reply(200, {"state": "active" if state.landed(rid) else "pending", "id": rid})

    def list_records(request: Request, did: str) -> Reply:
        if did not in state.data_sets:
            raise ApiError(404, "not_found", f"data set {did} does not exist")
        state.tick(did)
        found = state.records[did]
        limit = int(request.query.get("limit", 100) or 0)
        offset = int(request.query.get("offset", 0) or 0)
        rows = found[offset : offset + limit]
        if request.query.get("format", "dict") == "list":
            fields = list(rows[0]) if rows else []
            shown: list[dict[str, Any]] = (
                [{"fields": fields, "values": [[r.get(f) for f in fields] for r in rows]}]
                if rows
                else []
            )
        else:
            shown = [
                {
                    "metadata": {"id": row.get("scoring_id") or row.get("record_id")},
                    "entity": {"values": row, "annotations": {}},
                }
                for row in rows
            ]
        return Reply(200, {"records": shown, "total_count": len(found)})

    add("GET", r"/data_sets", list_data_sets)
    add("GET", r"/data_sets/(?P<did>[^/]+)", data_set)
    add("POST", r"/data_sets/(?P<did>[^/]+)/records", store_records)
    add("GET", r"/data_sets/(?P<did>[^/]+)/records", list_records)
    add("GET", r"/data_sets/(?P<did>[^/]+)/requests/(?P<rid>[^/]+)", request_status)

    # -- monitor instances, runs, measurements ----------------------------------------------
    def list_monitors(request: Request) -> Reply:
        return Reply(
            200,
            {
                "monitor_instances": _select(
                    list(state.monitors.values()),
                    request.query,
                    {
                        "data_mart_id": "data_mart_id",
                        "monitor_definition_id": "monitor_definition_id",
                        "target.target_id": "target.target_id",
                    },
                )
            },
        )

    def create_monitor(request: Request) -> Reply:
        body = _body(request) or {}
        for key in ("data_mart_id", "monitor_definition_id", "target"):
            if not body.get(key):
                raise ApiError(400, "missing_field", f"{key} is required")
        if body["monitor_definition_id"] not in MONITORS:
            raise ApiError(400, "unknown_monitor", f"{body['monitor_definition_id']} unknown")
        target = body["target"].get("target_id")
        if target not in state.subscriptions:
            raise ApiError(400, "invalid_target", f"subscription {target} does not exist")
        same = _select(
            list(state.monitors.values()),
            {"d": body["monitor_definition_id"], "t": target},
            {"d": "monitor_definition_id", "t": "target.target_id"},
        )
        if same:
            raise ApiError(
                409,
                "monitor_instance_exists",
                f"{body['monitor_definition_id']} already exists for {target}",
            )
        mid = new_id()
        state.monitors[mid] = state.resource(
            "monitor_instances",
            mid,
            {
                **body,
                "parameters": body.get("parameters", {}),
                "thresholds": body.get("thresholds", []),
                "status": {"state": "active"},
            },
        )
        return Reply(201, state.monitors[mid])

    def monitor(request: Request, mid: str) -> Reply:
        found = state.monitors.get(mid)
        if found is None:
            raise ApiError(404, "not_found", f"monitor instance {mid} does not exist")
        if request.method == "DELETE":
            del state.monitors[mid]
            return Reply(202)
        if request.method == "PATCH":
            for op in _body(request) or []:
                if op.get("op") not in ("replace", "add") or not re.fullmatch(
                    r"/(parameters|thresholds|schedule)", op.get("path", "")
                ):
                    raise ApiError(400, "invalid_patch", f"unsupported patch {op}")
                found["entity"][op["path"][1:]] = op["value"]
            found["metadata"]["modified_at"] = stamp()
        return Reply(200, found)

    def start_run(request: Request, mid: str) -> Reply:
        found = state.monitors.get(mid)
        if found is None:
            raise ApiError(404, "not_found", f"monitor instance {mid} does not exist")
        rid = new_id()
        run = state.resource(
            f"monitor_instances/{mid}/runs",
            rid,
            {
                "triggered_by": "user",
                "parameters": {},
                "status": {"state": "running", "queued_at": stamp()},
            },
        )
        state.runs[rid] = run
        _evaluate(state, found, run)
        answer = {**run, "entity": {**run["entity"], "status": {"state": "running"}}}
        return Reply(201, answer)

    def run(request: Request, mid: str, rid: str) -> Reply:
        if rid not in state.runs:
            raise ApiError(404, "not_found", f"run {rid} does not exist")
        return Reply(200, state.runs[rid])

    def measurements(request: Request, mid: str) -> Reply:
        found = state.measurements.get(mid, [])
        wanted = request.query.get("run_id")
        return Reply(
            200,
            {
                "measurements": [m for m in found if not wanted or m["entity"]["run_id"] == wanted],
                "total_count": len(found),
                "limit": 100,
                "offset": 0,
            },
        )

    add("GET", r"/monitor_instances", list_monitors)
    add("POST", r"/monitor_instances", create_monitor)
    add("GET", r"/monitor_instances/(?P<mid>[^/]+)", monitor)
    add("PATCH", r"/monitor_instances/(?P<mid>[^/]+)", monitor)
    add("DELETE", r"/monitor_instances/(?P<mid>[^/]+)", monitor)
    add("POST", r"/monitor_instances/(?P<mid>[^/]+)/runs", start_run)
    add("GET", r"/monitor_instances/(?P<mid>[^/]+)/runs/(?P<rid>[^/]+)", run)
    add("GET", r"/monitor_instances/(?P<mid>[^/]+)/measurements", measurements)


def _evaluate(state: OpenScaleState, monitor: dict[str, Any], run: dict[str, Any]) -> None:
    """A quality run: the newest feedback rows, scored by the deployed model, measured."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    entity = monitor["entity"]
    status = run["entity"]["status"]
    sid = entity["target"]["target_id"]
    params = entity.get("parameters", {})
    feedback = [r for ds in state.data_sets_of(sid, "feedback") for r in state.records[ds]]
    minimum = int(params.get("min_feedback_data_size", 100))
    if len(feedback) < minimum:
        status.update(
            state="error",
            completed_at=stamp(),
            failure={
                "trace": new_id(),
                "errors": [
                    {
                        "code": "AIQQM9001E",
                        "message": f"There are {len(feedback)} feedback records, fewer than "
                        f"min_feedback_data_size {minimum}; quality metrics were not computed",
                    }
                ],
            },
        )
        return
    rows = feedback[-int(params.get("max_rows_per_evaluation", 10_000)) :]
    subscription = state.subscriptions[sid]["entity"]
    label = subscription["asset_properties"]["label_column"]
    features = subscription["asset_properties"]["feature_fields"]
    estimator = state.wml.loaded[subscription["deployment"]["deployment_id"]]
    truth = [int(r[label]) for r in rows]
    predicted = estimator.predict([[float(r[f]) for f in features] for r in rows])
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average="weighted", zero_division=0
    )
    values = {
        "accuracy": accuracy_score(truth, predicted),
        "weighted_f1_measure": f1,
        "weighted_precision": precision,
        "weighted_recall": recall,
    }
    limits = {t["metric_id"]: t for t in entity.get("thresholds", [])}
    metrics = []
    for metric, value in values.items():
        item: dict[str, Any] = {"id": metric, "value": round(float(value), 6)}
        limit = limits.get(metric)
        if limit:
            item[limit["type"]] = limit["value"]
        metrics.append(item)
    mid = monitor["metadata"]["id"]
    state.measurements.setdefault(mid, []).append(
        state.resource(
            f"monitor_instances/{mid}/measurements",
            new_id(),
            {
                "timestamp": stamp(),
                "run_id": run["metadata"]["id"],
                "issue_count": 0,
                "monitor_definition_id": "quality",
                "monitor_instance_id": mid,
                "target": entity["target"],
                "values": [{"metrics": metrics, "tags": []}],
            },
        )
    )
    run["entity"]["parameters"] = {"records": len(rows)}
    status.update(state="finished", completed_at=stamp())
