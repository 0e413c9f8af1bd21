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

from tests.doubles.http_base import ApiError, HttpDouble, Reply, Request, lookup
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


# GET /<list>: the query parameters each list filters by (each the entity's field of that path)
LIST_FILTERS = {
    "service_providers": ("deployment_space_id", "service_type"),
    "subscriptions": (
        "data_mart_id",
        "service_provider_id",
        "deployment.deployment_id",
        "asset.asset_id",
    ),
    "data_sets": ("type", "target.target_id", "target.target_type"),
    "monitor_instances": ("data_mart_id", "monitor_definition_id", "target.target_id"),
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

    # -- the service's fixed answers --------------------------------------------------------
    def entitlements(self) -> dict[str, Any]:
        plan = {"id": self.instance_id, "plan_name": "standard", "name": "openscale-double"}
        return {"entitlements": {"ai_openscale": [plan]}}

    def check_instance(self, instance: str) -> None:
        if instance != self.instance_id:
            raise ApiError(
                404, "instance_not_found", f"OpenScale instance {instance} does not exist"
            )

    def data_marts(self) -> dict[str, Any]:
        entity = {"name": "data mart", "internal_database": True, "status": {"state": "active"}}
        return {"data_marts": [self.resource("data_marts", self.instance_id, entity)]}

    def definitions(self) -> dict[str, Any]:
        return {
            "monitor_definitions": [
                self.resource(
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
        }

    # -- service providers ------------------------------------------------------------------
    def add_provider(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("name", "service_type", "credentials"):
            if not body.get(key):
                raise ApiError(400, "missing_field", f"{key} is required")
        if body["credentials"].get("apikey") != self.wml.api_key:
            raise ApiError(400, "invalid_credentials", "the WML credentials are not valid")
        pid = new_id()
        entity = {k: v for k, v in body.items() if k != "credentials"}
        self.providers[pid] = self.resource(
            "service_providers", pid, {**entity, "status": {"state": "active"}}
        )
        return self.providers[pid]

    def provider(self, pid: str) -> dict[str, Any]:
        return lookup(self.providers, pid, f"service provider {pid} does not exist")

    def delete_provider(self, pid: str) -> None:
        self.provider(pid)
        del self.providers[pid]

    # -- subscriptions ----------------------------------------------------------------------
    def add_subscription(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("data_mart_id", "service_provider_id", "asset", "deployment"):
            if not body.get(key):
                raise ApiError(400, "missing_field", f"{key} is required")
        if body["service_provider_id"] not in self.providers:
            raise ApiError(
                400,
                "invalid_service_provider",
                f"service provider {body['service_provider_id']} does not exist",
            )
        deployment_id = body["deployment"].get("deployment_id")
        if deployment_id not in self.wml.deployments:
            raise ApiError(
                400, "deployment_not_found", f"WML deployment {deployment_id} does not exist"
            )
        sid = new_id()
        self.subscriptions[sid] = self.resource(
            "subscriptions", sid, {**body, "status": {"state": "preparing"}}
        )
        self.polls[sid] = 0
        return self.subscriptions[sid]

    def _activate(self, sid: str) -> None:
        """Active, with the payload logging and feedback data sets OpenScale creates."""
        entity = self.subscriptions[sid]["entity"]
        entity["status"] = {"state": "active"}
        for kind in ("payload_logging", "feedback"):
            did = new_id()
            self.data_sets[did] = self.resource(
                "data_sets",
                did,
                {
                    "data_mart_id": self.instance_id,
                    "name": f"{kind} of {sid}",
                    "type": kind,
                    "target": {"target_type": "subscription", "target_id": sid},
                    "data_schema": {"type": "struct", "fields": []},
                    "status": {"state": "active"},
                },
            )
            self.records[did] = []

    def subscription(self, sid: str) -> dict[str, Any]:
        return lookup(self.subscriptions, sid, f"subscription {sid} does not exist")

    def read_subscription(self, sid: str) -> dict[str, Any]:
        """A GET: a new subscription is active after ``subscription_polls`` reads."""
        found = self.subscription(sid)
        if (
            found["entity"]["status"]["state"] == "preparing"
            and self.subscription_polls is not None
        ):
            self.polls[sid] += 1
            if self.polls[sid] > self.subscription_polls:
                self._activate(sid)
        return found

    def delete_subscription(self, sid: str) -> None:
        """With its data sets and monitor instances, as OpenScale deletes them."""
        self.subscription(sid)
        for did in self.data_sets_of(sid):
            del self.data_sets[did]
            self.records.pop(did, None)
        for mid in [
            m for m, mon in self.monitors.items() if mon["entity"]["target"]["target_id"] == sid
        ]:
            del self.monitors[mid]
        del self.subscriptions[sid]

    # -- data sets and records --------------------------------------------------------------
    def data_set(self, did: str) -> dict[str, Any]:
        return lookup(self.data_sets, did, f"data set {did} does not exist")

    def store_records(self, did: str, body: Any) -> str:
        """Queue a POST of records as the data set's rows; the store request's id."""
        kind = self.data_set(did)["entity"]["type"]
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise ApiError(400, "invalid_records", "the body must be a list of records")
        target = self.data_sets[did]["entity"]["target"]["target_id"]
        deployment = self.subscriptions[target]["entity"]["deployment"]["deployment_id"]
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
        return self.store(did, rows)

    def request_state(self, did: str, rid: str) -> dict[str, Any]:
        if rid not in self.pending or self.pending[rid]["data_set"] != did:
            raise ApiError(404, "not_found", f"request {rid} of data set {did} does not exist")
        self.tick(did)
        return {"state": "active" if self.landed(rid) else "pending", "id": rid}

    def list_records(self, did: str, limit: int, offset: int, shape: str) -> dict[str, Any]:
        """A page of the data set's rows, as ``format=dict`` (the default) or ``list``."""
        self.data_set(did)
        self.tick(did)
        found = self.records[did]
        rows = found[offset : offset + limit]
        if shape == "list":
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
        return {"records": shown, "total_count": len(found)}

    # -- monitor instances, runs, measurements ----------------------------------------------
    def create_monitor(self, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("data_mart_id", "monitor_definition_id", "target"):
            if not body.get(key):
                raise ApiError(400, "missing_field", f"{key} is required")
        if body["monitor_definition_id"] not in MONITORS:
            raise ApiError(400, "unknown_monitor", f"{body['monitor_definition_id']} unknown")
        target = body["target"].get("target_id")
        if target not in self.subscriptions:
            raise ApiError(400, "invalid_target", f"subscription {target} does not exist")
        same = _select(
            list(self.monitors.values()),
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
        self.monitors[mid] = self.resource(
            "monitor_instances",
            mid,
            {
                **body,
                "parameters": body.get("parameters", {}),
                "thresholds": body.get("thresholds", []),
                "status": {"state": "active"},
            },
        )
        return self.monitors[mid]

    def monitor(self, mid: str) -> dict[str, Any]:
        return lookup(self.monitors, mid, f"monitor instance {mid} does not exist")

    def patch_monitor(self, mid: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        found = self.monitor(mid)
        for op in ops:
            if op.get("op") not in ("replace", "add") or not re.fullmatch(
                r"/(parameters|thresholds|schedule)", op.get("path", "")
            ):
                raise ApiError(400, "invalid_patch", f"unsupported patch {op}")
            found["entity"][op["path"][1:]] = op["value"]
        found["metadata"]["modified_at"] = stamp()
        return found

    def delete_monitor(self, mid: str) -> None:
        self.monitor(mid)
        del self.monitors[mid]

    def start_run(self, mid: str) -> dict[str, Any]:
        """A run evaluates at once; its answer still says ``running``, as OpenScale's."""
        found = self.monitor(mid)
        rid = new_id()
        run = self.resource(
            f"monitor_instances/{mid}/runs",
            rid,
            {
                "triggered_by": "user",
                "parameters": {},
                "status": {"state": "running", "queued_at": stamp()},
            },
        )
        self.runs[rid] = run
        self.evaluate(found, run)
        return {**run, "entity": {**run["entity"], "status": {"state": "running"}}}

    def run(self, rid: str) -> dict[str, Any]:
        return lookup(self.runs, rid, f"run {rid} does not exist")

    def list_measurements(self, mid: str, run_id: str | None) -> dict[str, Any]:
        found = self.measurements.get(mid, [])
        return {
            "measurements": [m for m in found if not run_id or m["entity"]["run_id"] == run_id],
            "total_count": len(found),
            "limit": 100,
            "offset": 0,
        }

    def evaluate(self, monitor: dict[str, Any], run: dict[str, Any]) -> None:
        """A quality run: the newest feedback rows, scored by the deployed model, measured."""
        from sklearn.metrics import accuracy_score, precision_recall_fscore_support

        entity = monitor["entity"]
        status = run["entity"]["status"]
        sid = entity["target"]["target_id"]
        params = entity.get("parameters", {})
        feedback = [r for ds in self.data_sets_of(sid, "feedback") for r in self.records[ds]]
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
        subscription = self.subscriptions[sid]["entity"]
        label = subscription["asset_properties"]["label_column"]
        features = subscription["asset_properties"]["feature_fields"]
        estimator = self.wml.loaded[subscription["deployment"]["deployment_id"]]
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
        self.measurements.setdefault(mid, []).append(
            self.resource(
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
    items: list[dict[str, Any]], query: Request | dict[str, str], paths: dict[str, str]
) -> list[dict[str, Any]]:
    """Items whose ``entity`` value at each path equals the query parameter, when given."""
    wanted = (
        {p: query.arg(p) for p in paths if p in query.query}
        if isinstance(query, Request)
        else query
    )

    def at(item: dict[str, Any], path: str) -> Any:
        value: Any = item["entity"]
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return [
        i
        for i in items
        if all(
            str(at(i, path)) == wanted[param] for param, path in paths.items() if param in wanted
        )
    ]


def routes(double: HttpDouble, state: OpenScaleState) -> None:
    """Watson OpenScale v2 under ``/openscale/{instance}/v2``: each route one state call."""
    ok, item = Reply, r"/(?P<rid>[^/]+)"

    def add(method: str, path: str, answer: Any) -> None:
        def scoped(request: Request, instance: str, **params: str) -> Reply:
            state.check_instance(instance)
            return answer(request, **params)

        double.route(method, r"/openscale/(?P<instance>[^/]+)/v2" + path, scoped)

    def listing(name: str, items: dict[str, Any]) -> None:
        filters = {f: f for f in LIST_FILTERS[name]}
        add("GET", "/" + name, lambda r: ok(200, {name: _select(list(items.values()), r, filters)}))

    double.route("GET", r"/v1/entitlements", lambda r: ok(200, state.entitlements()))
    add("GET", r"/data_marts", lambda r: ok(200, state.data_marts()))
    add("GET", r"/monitor_definitions", lambda r: ok(200, state.definitions()))
    # service providers
    providers = r"/service_providers"
    listing("service_providers", state.providers)
    add("POST", providers, lambda r: ok(201, state.add_provider(_body(r))))
    add("GET", providers + item, lambda r, rid: ok(200, state.provider(rid)))
    add("DELETE", providers + item, lambda r, rid: ok(202, state.delete_provider(rid)))
    # subscriptions
    subscriptions = r"/subscriptions"
    listing("subscriptions", state.subscriptions)
    add("POST", subscriptions, lambda r: ok(202, state.add_subscription(_body(r))))
    add("GET", subscriptions + item, lambda r, rid: ok(200, state.read_subscription(rid)))
    add("DELETE", subscriptions + item, lambda r, rid: ok(202, state.delete_subscription(rid)))
    # data sets and records
    data_sets = r"/data_sets"
    listing("data_sets", state.data_sets)
    add("GET", data_sets + item, lambda r, rid: ok(200, state.data_set(rid)))
    add("POST", data_sets + item + r"/records", _store_records(state))
    add(
        "GET",
        data_sets + item + r"/records",
        lambda r, rid: ok(
            200,
            state.list_records(
                rid,
                int(r.arg("limit", "100") or 0),
                int(r.arg("offset", "0") or 0),
                r.arg("format", "dict") or "dict",
            ),
        ),
    )
    add(
        "GET",
        data_sets + item + r"/requests/(?P<request_id>[^/]+)",
        lambda r, rid, request_id: ok(200, state.request_state(rid, request_id)),
    )
    # monitor instances, runs, measurements
    monitors = r"/monitor_instances"
    listing("monitor_instances", state.monitors)
    add("POST", monitors, lambda r: ok(201, state.create_monitor(_body(r))))
    add("GET", monitors + item, lambda r, rid: ok(200, state.monitor(rid)))
    add("PATCH", monitors + item, lambda r, rid: ok(200, state.patch_monitor(rid, _body(r, []))))
    add("DELETE", monitors + item, lambda r, rid: ok(202, state.delete_monitor(rid)))
    add("POST", monitors + item + r"/runs", lambda r, rid: ok(201, state.start_run(rid)))
    add(
        "GET",
        monitors + item + r"/runs/(?P<run>[^/]+)",
        lambda r, rid, run: ok(200, state.run(run)),
    )
    add(
        "GET",
        monitors + item + r"/measurements",
        lambda r, rid: ok(200, state.list_measurements(rid, r.arg("run_id"))),
    )


def _store_records(state: OpenScaleState) -> Any:
    def store(request: Request, rid: str) -> Reply:
        request_id = state.store_records(rid, request.json())
        location = {"Location": f"/v2/data_sets/{rid}/requests/{request_id}"}
        return Reply(202, {"state": "pending", "id": request_id}, location)

    return store


def _body(request: Request, empty: Any = None) -> Any:
    """The JSON body, or ``empty`` (a dict unless told) when there is none."""
    body = request.json()
    return ({} if empty is None else empty) if body is None else body
