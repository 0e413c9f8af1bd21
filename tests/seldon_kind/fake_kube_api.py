"""A small Kubernetes API server double on loopback, enough for ``kubectl apply --dry-run=client``.

kubectl needs the server even for a client-side dry run: it reads API discovery to map each
manifest's kind to a resource, GETs each object to decide "created" or "configured", and
with ``--prune`` lists the objects that carry the selector's labels. This double answers
exactly those requests from an in-memory store (core v1 and Seldon's v1), so the real
kubectl checks the real manifests and flags offline.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

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


class FakeKubeApi:
    """``objects`` maps (plural, namespace or "", name) to the stored object."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[str] = []

    def add(self, plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{len(self.objects) + 1}")  # prune tells objects by uid
        self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if path == "/version":
            return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            group = {
                "name": SELDON.split("/")[0],
                "versions": [{"groupVersion": SELDON, "version": "v1"}],
                "preferredVersion": {"groupVersion": SELDON, "version": "v1"},
            }
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
        if path in ("/api/v1", f"/apis/{SELDON}"):
            return 200, _resource_list("v1" if path == "/api/v1" else SELDON)
        parts = [p for p in path.split("/") if p]
        parts = parts[2:] if parts[0] == "api" else parts[3:]  # drop api/v1 or apis/g/v
        namespace = ""
        if parts[:1] == ["namespaces"] and len(parts) > 2:
            namespace, parts = parts[1], parts[2:]
        plural, name = parts[0], (parts[1] if len(parts) > 1 else None)
        if name is not None:
            found = self.objects.get((plural, namespace, name))
            if found is None:
                return 404, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                    "message": f"{plural} {name} not found",
                }
            return 200, found
        wanted = dict(
            term.split("=", 1)
            for term in query.get("labelSelector", [""])[0].split(",")
            if "=" in term
        )
        items = [
            obj
            for (kind, ns, _), obj in self.objects.items()
            if kind == plural
            and (not namespace or ns == namespace)
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}


@contextmanager
def serving(api: FakeKubeApi, folder: Path) -> Iterator[Path]:
    """Serve ``api`` on 127.0.0.1; yields a kubeconfig file pointing at it."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            api.requests.append(self.path)
            status, body = api.answer(url.path, parse_qs(url.query))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [
                    {
                        "name": "fake",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"},
                    }
                ],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
            }
        )
    )
    try:
        yield kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
