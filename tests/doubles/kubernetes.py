"""A small Kubernetes API server double on loopback, enough for ``kubectl apply --dry-run=client``.

kubectl needs the server even for a client-side dry run: it reads API discovery to map each
manifest's kind to a resource, GETs each object to decide "created" or "configured", and
with ``--prune`` lists the objects that carry the selector's labels. This double answers
exactly those requests from an in-memory store (core v1 and Seldon's v1), so the real
kubectl checks the real manifests and flags offline. Shapes follow the Kubernetes API
reference (kubernetes.io/docs/reference/using-api/api-concepts: discovery ``/api``,
``/apis``, ``APIResourceList``; list responses; a ``Status`` object with ``reason`` for
errors, kubernetes.io/docs/reference/kubernetes-api/common-definitions/status).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.doubles.http_base import ApiError, HttpDouble, Reply, Request

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
SELDON = "machinelearning.seldon.io/v1"
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {  # group/version -> (plural, kind, ns'd)
    "v1": [
        ("namespaces", "Namespace", False),
        ("persistentvolumes", "PersistentVolume", False),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("services", "Service", True),
        ("configmaps", "ConfigMap", True),
    ],
    SELDON: [("seldondeployments", "SeldonDeployment", True)],
}
REASONS = {404: "NotFound", 405: "MethodNotAllowed", 400: "BadRequest"}


def _resource_list(group_version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": scoped,
                "kind": kind,
                "verbs": VERBS,
            }
            for plural, kind, scoped in RESOURCES[group_version]
        ],
    }


@dataclass
class KubeObjects:
    """The cluster's objects: (plural, namespace or "", name) -> the stored object."""

    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def add(self, plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{len(self.objects) + 1}")  # prune tells objects by uid
        self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        found = self.objects.get((plural, namespace, name))
        if found is None:
            raise ApiError(404, "NotFound", f"{plural} {name} not found")
        return found

    def list(self, plural: str, namespace: str, selector: str) -> dict[str, Any]:
        """The objects of ``plural`` (in ``namespace``, or all) with the selector's labels."""
        wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
        items = [
            obj
            for (kind, ns, _), obj in self.objects.items()
            if kind == plural
            and (not namespace or ns == namespace)
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}


class FakeKubeApi(HttpDouble):
    """Discovery and GET/list of the stored objects; ``add`` puts an object in the cluster."""

    name = "kubernetes"

    def __init__(self) -> None:
        super().__init__()
        self.state = KubeObjects()
        self.add = self.state.add
        group = {
            "name": SELDON.split("/")[0],
            "versions": [{"groupVersion": SELDON, "version": "v1"}],
            "preferredVersion": {"groupVersion": SELDON, "version": "v1"},
        }
        fixed = {
            "/version": {"major": "1", "minor": "30", "gitVersion": "v1.30.0"},
            "/api": {"kind": "APIVersions", "versions": ["v1"]},
            "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]},
            "/api/v1": _resource_list("v1"),
            f"/apis/{SELDON}": _resource_list(SELDON),
        }
        for path, body in fixed.items():
            self.route("GET", path, lambda _r, body=body: Reply(200, body))
        for prefix in (r"/api/v1", r"/apis/[^/]+/[^/]+"):
            for scope in ("", r"/namespaces/(?P<namespace>[^/]+)"):
                self.route("GET", rf"{prefix}{scope}/(?P<plural>[^/]+)", self._list)
                self.route("GET", rf"{prefix}{scope}/(?P<plural>[^/]+)/(?P<name>[^/]+)", self._get)

    def _get(self, request: Request, plural: str, name: str, namespace: str = "") -> Reply:
        return Reply(200, self.state.get(plural, namespace or "", name))

    def _list(self, request: Request, plural: str, namespace: str = "") -> Reply:
        selector = request.arg("labelSelector", "") or ""
        return Reply(200, self.state.list(plural, namespace or "", selector))

    def error_body(self, request: Request, error: ApiError) -> Any:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": REASONS.get(error.status, error.code),
            "code": error.status,
            "message": error.message,
        }


@contextmanager
def serving(api: FakeKubeApi, folder: Path) -> Iterator[Path]:
    """Serve ``api`` on 127.0.0.1; yields a kubeconfig file pointing at it."""
    with api:
        kubeconfig = folder / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                    "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
                }
            )
        )
        yield kubeconfig
