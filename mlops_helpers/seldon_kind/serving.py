"""A SeldonDeployment run as local processes: Seldon's own Python microservice wrapper
(from the Seldon environment) in the staged image folder, with the graph's parameters.

This is what the operator does in a cluster, without the cluster: pick the image (a
prepackaged server or the componentSpecs container), mount the model from ``modelUri``,
pass the graph parameters through ``PREDICTIVE_UNIT_PARAMETERS``. Each server is forked
from a warm launcher (``warm_launcher.py``) that has already imported seldon-core, Flask
and scikit-learn, instead of starting a fresh interpreter that imports them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError
from mlops_helpers.launcher_client import WarmLauncher
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.modelwork import child_env, model_class
from mlops_helpers.servers import ManagedServer, free_port, http_json

PREDICTIONS = "/api/v1.0/predictions"
START_TIMEOUT_S = 90.0
#: runs seldon's microservice with every port on loopback (it runs in the Seldon env)
LAUNCHER = Path(__file__).resolve().parent / "loopback_microservice.py"
#: forks the model servers from one process that imported seldon-core once
WARM_LAUNCHER = Path(__file__).resolve().parent / "warm_launcher.py"


class ImageIndex:
    """``run_dir/images/index.json``: image reference -> staged folder, and which image
    plays each of Seldon's prepackaged servers (SKLEARN_SERVER -> our sklearn server)."""

    def __init__(self, images_dir: Path) -> None:
        self.path = Path(images_dir) / "index.json"

    def load(self) -> dict[str, dict[str, str]]:
        if self.path.is_file():
            return dict(json.loads(self.path.read_text()))
        return {"images": {}, "prepackaged": {}}

    def add(self, ref: str, folder: str, prepackaged: str | None = None) -> None:
        data = self.load()
        data["images"][ref] = folder
        if prepackaged:
            data["prepackaged"][prepackaged] = ref
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, indent=2))


@dataclass(frozen=True)
class LocalUnit:
    """One SeldonDeployment resolved to what a local process needs."""

    deployment: str
    image: str
    image_dir: Path
    server_class: str
    parameters: list[dict[str, str]]
    version: str


def resolve_model_uri(uri: str, model_store: Path) -> Path:
    """``pvc://<claim>/<path>`` -> ``<model_store>/<path>`` (the claim's local backing)."""
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if not uri.startswith("pvc://"):
        raise StageError(f"modelUri {uri} cannot be reached locally (pvc:// or file:// only)")
    _claim, _, rest = uri[len("pvc://") :].partition("/")
    return model_store / rest


def resolve(doc: dict[str, Any], index: ImageIndex, model_store: Path) -> LocalUnit:
    name = doc["metadata"]["name"]
    graph = doc["spec"]["predictors"][0]["graph"]
    data = index.load()
    implementation = graph.get("implementation")
    containers = [
        c
        for spec in doc["spec"]["predictors"][0].get("componentSpecs", [])
        for c in spec["spec"]["containers"]
        if c["name"] == graph["name"]
    ]
    if containers and containers[0].get("image"):
        ref = containers[0]["image"]  # as the operator does: an explicit image wins
    elif implementation:
        ref = data["prepackaged"].get(implementation)
        if ref is None:
            raise StageError(f"{name}: no local image plays {implementation}; run build")
    else:
        raise StageError(f"{name}: no container named {graph['name']} in componentSpecs")
    folder = data["images"].get(ref)
    if folder is None or not Path(folder).is_dir():
        raise StageError(f"{name}: image {ref} was never built (ErrImagePull)")
    parameters = [dict(p) for p in graph.get("parameters", [])]
    if "modelUri" in graph:
        local = resolve_model_uri(graph["modelUri"], model_store)
        parameters.append({"name": "model_uri", "type": "STRING", "value": str(local)})
    labels = doc["metadata"].get("labels", {})
    return LocalUnit(
        name,
        ref,
        Path(folder),
        model_class(Path(folder)),
        parameters,
        labels.get("mlops-workshop/version", ref.rsplit(":", 1)[-1]),
    )


def microservice_args(
    server_class: str, port: int | str = "{port}", *, grpc: bool = True
) -> list[str]:
    """seldon-core-microservice's arguments for ``server_class``: REST on ``port``, gRPC
    and metrics on free ports (every one bound to 127.0.0.1 by loopback_microservice).
    ``grpc=False``: no gRPC server (``--grpc-workers 0``, seldon's own switch)."""
    grpc_args = ["--grpc-port", str(free_port())] if grpc else ["--grpc-workers", "0"]
    return [
        server_class,
        "--service-type",
        "MODEL",
        "--http-port",
        str(port),
        *grpc_args,
        "--metrics-port",
        str(free_port()),
        "--workers",
        "1",
    ]


def microservice_argv(python: Path, server_class: str) -> list[str]:
    """Seldon's microservice for ``server_class`` as its own fresh process."""
    return [str(python), "-P", str(LAUNCHER), *microservice_args(server_class)]


def warm_launcher(ctx: StageContext, python: Path) -> WarmLauncher:
    """The warm launcher (started on first use, if it does not run). It outlives a stage
    (the next stage forks from it too), is tracked, and cleanup stops it after the servers."""
    argv = [str(python), "-P", str(WARM_LAUNCHER), "{port}"]
    return WarmLauncher(
        ctx, "seldon_launcher", "seldon-launcher", argv, child_env(), timeout=START_TIMEOUT_S
    )


def start_unit(
    launcher: WarmLauncher, unit: LocalUnit, process_name: str, timeout: float = START_TIMEOUT_S
) -> ManagedServer:
    """Seldon's microservice for ``unit``, forked from ``launcher``, in the unit's folder;
    tracked; healthy when /health/ping answers 200. It serves REST and metrics, not gRPC:
    nothing local speaks gRPC (SeldonClient and the smoke tests use REST), and its two
    processes were a third of each server's memory, twelve servers per notebook."""
    request = {
        "args": microservice_args(unit.server_class, grpc=False),
        "cwd": str(unit.image_dir),
        "env": {"PREDICTIVE_UNIT_PARAMETERS": json.dumps(unit.parameters)},
    }
    return launcher.start(process_name, request, health_path="/health/ping", timeout=timeout)


def sample_payload(meta: dict[str, Any]) -> dict[str, Any]:
    """One request body from the model's held-out sample (numbers or one text)."""
    sample = meta["sample"][0]
    row = [sample] if isinstance(sample, str) else sample
    return {"data": {"ndarray": [row]}}


def bad_payloads(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Malformed requests every server must answer with a 4xx (and keep serving)."""
    if isinstance(meta["sample"][0], str):
        return {
            "missing data": {"rows": [["no data key"]]},
            "wrong shape": {"data": {"ndarray": [["two", "texts"]]}},
            "not a text": {"data": {"ndarray": [[3.5]]}},
            "empty text": {"data": {"ndarray": [["  "]]}},
        }
    width = int(meta["n_features"])
    return {
        "missing data": {"rows": [[1.0] * width]},
        "wrong shape": {"data": {"ndarray": [[1.0] * (width + 1)]}},
        "non-numeric": {"data": {"ndarray": [["x"] * width]}},
        "empty": {"data": {"ndarray": []}},
        # valid JSON that no float holds, and one whose score overflows to NaN
        "400-digit integer": {"data": {"ndarray": [[10**400] * width]}},
        "1e308": {"data": {"ndarray": [[1e308] * width]}},
    }


def predict(url: str, payload: dict[str, Any], timeout: float = 10.0) -> tuple[int, Any]:
    return http_json("POST", f"{url}{PREDICTIONS}", payload, timeout=timeout)
