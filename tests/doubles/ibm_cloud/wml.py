"""IAM, the platform API and Watson Machine Learning v4, as the double answers them.

Shapes follow IBM's published references:
- IAM: ``POST /identity/token`` (grant_type apikey) -> access_token, expires_in, ...
  (cloud.ibm.com/apidocs/iam-identity-token-api#gettoken-apikey)
- Platform: ``/v2/spaces`` and ``/v2/software_specifications``
  (cloud.ibm.com/apidocs/watson-data-api#spaces, #software-specifications)
- WML v4: ``/ml/v4/models`` (+ ``/content``, ``/revisions``), ``/ml/v4/deployments``
  (+ ``/predictions``) (cloud.ibm.com/apidocs/machine-learning)

A deployment really loads the uploaded model archive (joblib) and really predicts with it;
if the model was pickled by another scikit-learn than its runtime carries, the deployment
fails as WML's would. Changing a deployment's asset (PATCH ``/asset``) is ``updating`` until
the new revision loads; if it cannot, the deployment goes back to ``ready`` on the *previous*
asset with the reason in ``status.failure``, as the WML v4 reference says ("If any failures,
deployment will be reverted back to the previous id/rev and the failure message will be
captured in 'failure' field", quoted in ibm-watsonx-ai 1.8.1 ``deployments.py``
``_wait_for_deployment_update``). ``hardware_spec`` (``{"name"}`` or ``{"id"}``) must name one
of WML's predefined sizes. Scoring a deployment that has an OpenScale subscription writes the
payload record itself, as WML's automatic payload logging does.

IAM access tokens live ``token_lifetime`` seconds (3600, as IBM Cloud's; a test shortens it).

``WmlState`` holds all of it and its methods are the service's changes (``create_deployment``,
``read_deployment`` that moves a deployment along as polls pass, ``patch_deployment``, ...);
``routes`` maps each endpoint to one of them. Lists are WML's page shape ``{"resources",
"total_results", "limit", "first"}`` (the machine-learning reference, "Pagination").
"""

from __future__ import annotations

import io
import itertools
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.doubles.http_base import ApiError, HttpDouble, Reply, Request, lookup

# IBM's runtimes for scikit-learn models: (name, python, scikit-learn, life-cycle state)
PUBLISHED_RUNTIMES = [
    ("runtime-24.1-py3.11", "3.11", "1.3.0", "deprecated"),
    ("runtime-25.1-py3.12", "3.12", "1.6.1", "supported"),
]
# what the service listed a year earlier: a client must not assume today's list
OLDER_RUNTIMES = [
    ("runtime-23.1-py3.10", "3.10", "1.1.1", "deprecated"),
    ("runtime-24.1-py3.11", "3.11", "1.3.0", "supported"),
]
Runtime = tuple[str, str, str, str]
# WML's predefined hardware specifications for deployments (name -> asset id in the double):
# GET /v2/hardware_specifications lists them on IBM Cloud
HARDWARE_SPECS = {
    name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"hardware-{name}"))
    for name in ("XXS", "XS", "S", "M", "L", "XL")
}
APIKEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"


def stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class WmlState:
    """Everything WML and the platform hold; tests read it to check a run's end state."""

    api_key: str
    base_url: str = ""
    runtimes: list[Runtime] = field(default_factory=lambda: list(PUBLISHED_RUNTIMES))
    #: GET polls a deployment answers "initializing" before "ready"; None: never ready
    deploy_polls: int | None = 1
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_content: dict[str, bytes] = field(default_factory=dict)
    revisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    loaded: dict[str, Any] = field(default_factory=dict)  # deployment id -> estimator
    polls: dict[str, int] = field(default_factory=dict)
    previous_asset: dict[str, dict[str, Any]] = field(default_factory=dict)  # while updating
    scored: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry
    token_lifetime: int = 3600  # seconds, as IBM Cloud's IAM issues them
    tokens_issued: int = 0
    #: set by the OpenScale part: called with (deployment_id, request, response)
    on_scored: Callable[[str, Any, Any], None] | None = None
    _spec_ids: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # -- IAM --------------------------------------------------------------------------------
    def issue_token(self, form: dict[str, str]) -> dict[str, Any]:
        """An access token for the API key (a JWT whose ``exp`` the double enforces)."""
        if form.get("grant_type", "").replace("%3A", ":") != APIKEY_GRANT:
            raise ApiError(400, "BXNIM0109E", "Property missing or empty: grant_type")
        if form.get("apikey") != self.api_key:
            raise ApiError(400, "BXNIM0415E", "Provided API key could not be found.")
        now = int(datetime.now(UTC).timestamp())
        lifetime = self.token_lifetime
        value = _jwt(
            {
                "iam_id": "iam-ServiceId-double",
                "sub": "double",
                "iat": now,
                "exp": now + lifetime,
                "jti": new_id(),
                "account": {"bss": "double"},
            }
        )
        self.tokens[value] = now + lifetime
        self.tokens_issued += 1
        return {
            "access_token": value,
            "refresh_token": "not_supported",
            "token_type": "Bearer",
            "expires_in": lifetime,
            "expiration": now + lifetime,
            "scope": "ibm openid",
        }

    # -- spaces -----------------------------------------------------------------------------
    def add_space(self, name: str, created_at: str | None = None) -> str:
        sid = new_id()
        self.spaces[sid] = {
            "metadata": {
                "id": sid,
                "url": f"/v2/spaces/{sid}",
                "created_at": created_at or stamp(),
                "updated_at": stamp(),
            },
            "entity": {
                "name": name,
                "description": "",
                "scope": {"bss_account_id": "double"},
                "status": {"state": "active"},
                "type": "cpd",
                "stage": {"production": False},
            },
        }
        return sid

    def create_space(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("name"):
            raise ApiError(400, "invalid_request", "name is required")
        if not (body.get("storage") or {}).get("resource_crn"):
            raise ApiError(400, "invalid_request", "storage.resource_crn is required")
        return self.spaces[self.add_space(str(body["name"]))]

    def list_spaces(self, name: str | None) -> list[dict[str, Any]]:
        return [s for s in self.spaces.values() if not name or s["entity"]["name"] == name]

    def space(self, sid: str | None) -> dict[str, Any]:
        if not sid:
            raise ApiError(
                400, "missing_space_id", "Either space_id or project_id has to be provided."
            )
        return lookup(self.spaces, sid, f"space {sid} does not exist", "space_not_found")

    def delete_space(self, sid: str) -> None:
        self.space(sid)
        in_use = [d for d in self.deployments.values() if d["metadata"]["space_id"] == sid]
        if in_use:
            raise ApiError(
                400, "space_not_empty", f"space {sid} still has {len(in_use)} deployment(s)"
            )
        del self.spaces[sid]

    # -- software specifications ------------------------------------------------------------
    def spec_id(self, name: str) -> str:
        return self._spec_ids.setdefault(name, str(uuid.uuid5(uuid.NAMESPACE_URL, name)))

    def software_spec(self, runtime: Runtime) -> dict[str, Any]:
        name, python, sklearn, life = runtime
        cycle = {} if life == "supported" else {"life_cycle": {life: {"since": "2025-06-01"}}}
        return {
            "metadata": {
                "name": name,
                "asset_id": self.spec_id(name),
                "asset_type": "software_specification",
                "created_at": "2024-05-01T00:00:00.000Z",
                "href": f"/v2/software_specifications/{self.spec_id(name)}",
                **cycle,
            },
            "entity": {
                "software_specification": {
                    "type": "base",
                    "display_name": f"Runtime with Python {python}",
                    "software_configuration": {
                        "platform": {"name": "python", "version": python},
                        "included_packages": [
                            {"name": "scikit-learn", "version": sklearn},
                            {"name": "numpy", "version": "1.26.4"},
                        ],
                    },
                }
            },
        }

    def list_specs(self, name: str | None) -> list[dict[str, Any]]:
        return [self.software_spec(r) for r in self.runtimes if not name or r[0] == name]

    def runtime_of(self, spec_id: str, status: int = 400) -> Runtime:
        for runtime in self.runtimes:
            if self.spec_id(runtime[0]) == spec_id:
                return runtime
        if status == 404:
            raise ApiError(404, "not_found", f"software specification {spec_id} does not exist")
        raise ApiError(
            400, "invalid_software_spec", f"software specification {spec_id} is not supported"
        )

    # -- models -----------------------------------------------------------------------------
    def create_model(self, space_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        space_id = self.space(space_id)["metadata"]["id"]
        for key in ("name", "type", "software_spec"):
            if not body.get(key):
                raise ApiError(400, "missing_field", f"{key} is required")
        runtime = self.runtime_of(body["software_spec"].get("id", ""))
        mid = new_id()
        self.models[mid] = {
            "metadata": {
                "id": mid,
                "name": body["name"],
                "space_id": space_id,
                "description": body.get("description", ""),
                "created_at": stamp(),
                "modified_at": stamp(),
                "owner": "double",
            },
            "entity": {
                "type": body["type"],
                "software_spec": {"id": self.spec_id(runtime[0]), "name": runtime[0]},
                "label_column": body.get("label_column"),
                "schemas": body.get("schemas", {}),
                "content_import_state": "pending",
            },
        }
        return self.models[mid]

    def model(self, mid: str, rev: str | None = None) -> dict[str, Any]:
        found = lookup(self.models, mid, f"model {mid} does not exist", "model_not_found")
        if not rev:
            return found
        for revision in self.revisions.get(mid, []):
            if revision["metadata"]["rev"] == rev:
                return revision
        raise ApiError(404, "revision_not_found", f"model {mid} has no revision {rev}")

    def list_models(self, space_id: str | None) -> list[dict[str, Any]]:
        space_id = self.space(space_id)["metadata"]["id"]
        return [m for m in self.models.values() if m["metadata"]["space_id"] == space_id]

    def patch_model(self, mid: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        found = self.model(mid)
        for op in ops:
            field_name = op["path"].strip("/").split("/")
            target = (
                found["metadata"] if field_name[0] in ("name", "description") else found["entity"]
            )
            target[field_name[-1]] = op.get("value")
        found["metadata"]["modified_at"] = stamp()
        return found

    def delete_model(self, mid: str) -> None:
        self.model(mid)
        if any(d["entity"]["asset"]["id"] == mid for d in self.deployments.values()):
            raise ApiError(400, "model_in_use", f"model {mid} is deployed")
        del self.models[mid]
        self.model_content.pop(mid, None)
        self.revisions.pop(mid, None)

    def upload_content(self, mid: str, content_format: str | None, raw: bytes) -> dict[str, Any]:
        found = self.model(mid)
        if content_format != "native":
            raise ApiError(400, "invalid_content_format", "content_format must be native")
        try:
            _load_estimator(raw)
        except ApiError:
            raise
        except Exception as exc:  # a broken archive is the caller's fault: 400
            raise ApiError(
                400, "invalid_model_content", f"cannot read the archive: {exc}"
            ) from None
        self.model_content[mid] = raw
        found["entity"]["content_import_state"] = "completed"
        return {"attachment_id": new_id(), "content_format": "native", "persisted": True}

    def list_revisions(self, mid: str) -> list[dict[str, Any]]:
        self.model(mid)
        return self.revisions.setdefault(mid, [])

    def create_revision(self, mid: str) -> dict[str, Any]:
        found, current = self.list_revisions(mid), self.models[mid]
        rev = str(len(found) + 1)
        snapshot = {
            "metadata": {
                **current["metadata"],
                "rev": rev,
                "commit_info": {"committed_at": stamp()},
            },
            "entity": dict(current["entity"]),
        }
        found.append(snapshot)
        current["metadata"]["rev"] = rev
        self.model_content[f"{mid}@{rev}"] = self.model_content.get(mid, b"")
        return snapshot

    # -- deployments ------------------------------------------------------------------------
    def _loaded(self, asset: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        """The asset's estimator loaded in its runtime, or WML's failure reason."""
        mid = asset["id"]
        content = self.model_content.get(f"{mid}@{asset.get('rev')}") or self.model_content.get(mid)
        if not content:
            return None, _failure("model_content_missing", f"model {mid} has no content")
        estimator, pickled = _load_estimator(content)
        runtime = self.runtime_of(self.models[mid]["entity"]["software_spec"]["id"])
        if pickled.split(".")[:2] != runtime[2].split(".")[:2]:
            return None, _failure(
                "deployment_failed",
                f"the model was pickled with scikit-learn {pickled}; "
                f"runtime {runtime[0]} has scikit-learn {runtime[2]} and cannot load it",
            )
        return estimator, None

    def _load(self, deployment: dict[str, Any]) -> None:
        """A new deployment loads its asset: initializing, or failed with WML's reason."""
        status = deployment["entity"]["status"]
        estimator, failed = self._loaded(deployment["entity"]["asset"])
        if failed is not None:
            status.update(state="failed", failure=failed)
            return
        self.loaded[deployment["metadata"]["id"]] = estimator
        self.polls[deployment["metadata"]["id"]] = 0
        status.update(state="initializing")
        status.pop("failure", None)

    def _settle_update(self, deployment: dict[str, Any]) -> None:
        """An asset update ends ready: on the new asset, or back on the previous one with
        the reason in ``failure`` (WML's v4 behaviour; the deployment never goes failed)."""
        entity, did = deployment["entity"], deployment["metadata"]["id"]
        previous = self.previous_asset.pop(did)
        estimator, failed = self._loaded(entity["asset"])
        if failed is None:
            self.loaded[did] = estimator
            entity["status"] = {**entity["status"], "state": "ready"}
            entity["status"].pop("failure", None)
        else:
            entity["asset"] = previous
            entity["status"] = {**entity["status"], "state": "ready", "failure": failed}

    def create_deployment(self, space_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        space_id = self.space(space_id)["metadata"]["id"]
        asset = body.get("asset") or {}
        if not body.get("name") or "online" not in body:
            raise ApiError(400, "missing_field", "name and online are required")
        if asset.get("id") not in self.models:
            raise ApiError(404, "model_not_found", f"model {asset.get('id')} does not exist")
        hardware = body.get("hardware_spec", {"name": "S"})
        if not isinstance(hardware, dict) or not (
            hardware.get("id") in HARDWARE_SPECS.values() or hardware.get("name") in HARDWARE_SPECS
        ):
            raise ApiError(
                400,
                "invalid_hardware_spec",
                f"hardware_spec {hardware!r} is not one of {', '.join(HARDWARE_SPECS)}",
            )
        did = new_id()
        deployment = {
            "metadata": {
                "id": did,
                "name": body["name"],
                "space_id": space_id,
                "created_at": stamp(),
                "modified_at": stamp(),
            },
            "entity": {
                "name": body["name"],
                "asset": asset,
                "online": body["online"],
                "space_id": space_id,
                "hardware_spec": hardware,
                "deployed_asset_type": "model",
                "status": {
                    "state": "initializing",
                    "online_url": {"url": f"{self.base_url}/ml/v4/deployments/{did}/predictions"},
                },
            },
        }
        self.deployments[did] = deployment
        self._load(deployment)
        return deployment

    def deployment(self, did: str) -> dict[str, Any]:
        return lookup(
            self.deployments, did, f"deployment {did} does not exist", "deployment_not_found"
        )

    def read_deployment(self, did: str) -> dict[str, Any]:
        """A GET: a deployment initializing or updating gets there after ``deploy_polls``."""
        found = self.deployment(did)
        status = found["entity"]["status"]
        if status["state"] in ("initializing", "updating") and self.deploy_polls is not None:
            self.polls[did] = self.polls.get(did, 0) + 1
            if self.polls[did] > self.deploy_polls:
                if status["state"] == "updating":
                    self._settle_update(found)
                else:
                    status["state"] = "ready"
        return found

    def patch_deployment(self, did: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        found = self.deployment(did)
        status = found["entity"]["status"]
        for op in ops:
            if op.get("path") == "/asset":
                if status["state"] != "ready":
                    raise ApiError(
                        400, "deployment_not_ready", f"deployment {did} is {status['state']}"
                    )
                self.previous_asset[did] = found["entity"]["asset"]
                found["entity"]["asset"] = op["value"]
                status["state"] = "updating"
                self.polls[did] = 0
            elif op.get("path") in ("/name", "/description", "/tags", "/custom"):
                found["entity"][op["path"][1:]] = op["value"]
            else:
                raise ApiError(400, "invalid_patch", f"cannot patch {op.get('path')}")
        found["metadata"]["modified_at"] = stamp()
        return found

    def delete_deployment(self, did: str) -> None:
        self.deployment(did)
        del self.deployments[did]
        self.loaded.pop(did, None)

    def list_deployments(
        self, space_id: str | None, name: str | None, asset: str | None
    ) -> list[dict[str, Any]]:
        space_id = self.space(space_id)["metadata"]["id"]
        return [
            d
            for d in self.deployments.values()
            if d["metadata"]["space_id"] == space_id
            and (not name or d["metadata"]["name"] == name)
            and (not asset or d["entity"]["asset"]["id"] == asset)
        ]

    def predict(self, did: str, body: Any) -> dict[str, Any]:
        """Score with the deployed estimator; a subscribed deployment logs the payload."""
        state = self.deployment(did)["entity"]["status"]["state"]
        if state not in ("ready", "updating"):  # an update
            # keeps serving the previous revision until the new one is loaded
            raise ApiError(400, "deployment_not_ready", f"deployment {did} is {state}")
        try:
            block = body["input_data"][0]
            rows = [[float(v) for v in row] for row in block["values"]]
            estimator = self.loaded[did]
            probabilities = estimator.predict_proba(rows)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ApiError(400, "invalid_input_data", f"cannot score the input: {exc}") from None
        labels = estimator.classes_[probabilities.argmax(axis=1)].tolist()
        answer = {
            "predictions": [
                {
                    "fields": ["prediction", "probability"],
                    "values": [
                        [int(y), [round(float(p), 6) for p in ps]]
                        for y, ps in zip(labels, probabilities.tolist(), strict=True)
                    ],
                }
            ]
        }
        self.scored.append(body)
        if self.on_scored is not None:
            self.on_scored(did, body, answer)
        return answer


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"trace": new_id(), "errors": [{"code": code, "message": message}]}


def _page(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resources": resources,
        "total_results": len(resources),
        "limit": 100,
        "first": {"href": "first"},
    }


def _space_id(request: Request) -> str | None:
    """The space a request names: ``?space_id=`` or ``space_id`` in its JSON body."""
    body = request.json() if request.raw[:1] == b"{" else None
    return request.arg("space_id") or (body or {}).get("space_id")


def routes(double: HttpDouble, state: WmlState) -> None:
    """IAM, the platform API and WML v4: each route one ``WmlState`` call."""
    add, ok, item = double.route, Reply, r"/(?P<rid>[^/]+)"

    def form(request: Request) -> dict[str, str]:
        return dict(p.split("=", 1) for p in request.raw.decode().split("&") if "=" in p)

    add("POST", r"/identity/token", lambda r: ok(200, state.issue_token(form(r))), public=True)
    # spaces
    add("GET", r"/v2/spaces", lambda r: ok(200, _page(state.list_spaces(r.arg("name")))))
    add("POST", r"/v2/spaces", lambda r: ok(202, state.create_space(r.json() or {})))
    add("GET", r"/v2/spaces" + item, lambda r, rid: ok(200, state.space(rid)))
    add("DELETE", r"/v2/spaces" + item, lambda r, rid: ok(202, state.delete_space(rid)))
    # software specifications
    specs = r"/v2/software_specifications"
    add("GET", specs, lambda r: ok(200, _page(state.list_specs(r.arg("name")))))
    add(
        "GET",
        specs + item,
        lambda r, rid: ok(200, state.software_spec(state.runtime_of(rid, status=404))),
    )
    # models
    models = r"/ml/v4/models"
    add("POST", models, lambda r: ok(201, state.create_model(_space_id(r), r.json() or {})))
    add("GET", models, lambda r: ok(200, _page(state.list_models(_space_id(r)))))
    add("GET", models + item, lambda r, rid: ok(200, state.model(rid, r.arg("rev"))))
    add("PATCH", models + item, lambda r, rid: ok(200, state.patch_model(rid, r.json() or [])))
    add("DELETE", models + item, lambda r, rid: ok(204, state.delete_model(rid)))
    # the SDK deletes models here
    add("DELETE", r"/v2/assets" + item, lambda r, rid: ok(204, state.delete_model(rid)))
    add(
        "PUT",
        models + item + r"/content",
        lambda r, rid: ok(201, state.upload_content(rid, r.arg("content_format"), r.raw)),
    )
    add("POST", models + item + r"/revisions", lambda r, rid: ok(201, state.create_revision(rid)))
    add(
        "GET",
        models + item + r"/revisions",
        lambda r, rid: ok(200, _page(state.list_revisions(rid))),
    )
    # deployments
    deployments = r"/ml/v4/deployments"
    add(
        "POST",
        deployments,
        lambda r: ok(202, state.create_deployment(_space_id(r), r.json() or {})),
    )
    add(
        "GET",
        deployments,
        lambda r: ok(
            200,
            _page(state.list_deployments(_space_id(r), r.arg("name"), r.arg("asset_id"))),
        ),
    )
    add("GET", deployments + item, lambda r, rid: ok(200, state.read_deployment(rid)))
    add(
        "PATCH",
        deployments + item,
        lambda r, rid: ok(202, state.patch_deployment(rid, r.json() or [])),
    )
    add("DELETE", deployments + item, lambda r, rid: ok(204, state.delete_deployment(rid)))
    add(
        "POST",
        deployments + item + r"/predictions",
        lambda r, rid: ok(200, state.predict(rid, _scoring_body(r))),
    )


def _scoring_body(request: Request) -> Any:
    try:
        return request.json()
    except ApiError as exc:
        raise ApiError(400, "invalid_input_data", f"cannot score the input: {exc}") from None


def _jwt(claims: dict[str, Any]) -> str:
    """An IAM access token is a JWT; clients read its claims (expiry), never its signature."""
    import base64
    import hashlib
    import json

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    return f"{head}.{body}.{part(hashlib.sha256(f'{head}.{body}'.encode()).digest())}"


def _load_estimator(content: bytes) -> tuple[Any, str]:
    """The estimator in a model archive (``.tar.gz`` holding one ``.joblib``/``.pkl``) and
    the scikit-learn version that pickled it (scikit-learn warns with it when it differs
    from the one loading it; an estimator's own state only holds the loading version)."""
    import warnings

    import joblib
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning

    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith((".joblib", ".pkl"))), None)
        if member is None:
            raise ApiError(
                400, "invalid_model_content", "the archive holds no .joblib or .pkl model file"
            )
        handle = tar.extractfile(member)
        assert handle is not None
        with warnings.catch_warnings(record=True) as seen:  # the check says it in WML's words
            warnings.simplefilter("always")
            estimator = joblib.load(io.BytesIO(handle.read()))
    pickled = next(
        (
            str(w.message.original_sklearn_version)
            for w in seen
            if isinstance(w.message, InconsistentVersionWarning)
        ),
        sklearn.__version__,
    )
    return estimator, pickled
