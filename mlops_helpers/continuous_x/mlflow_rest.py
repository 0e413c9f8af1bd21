"""The few MLflow REST calls the pipeline makes: run status, model versions, aliases.

Plain HTTP, as the seed's Argo workflow does with curl: the stages need no MLflow import,
and the same client works against a remote MLflow on Chameleon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from mlops_helpers.errors import StageError
from mlops_helpers.servers import http_json

TERMINAL = ("FINISHED", "FAILED", "KILLED")


class MlflowRest:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        try:
            return http_json(method, url, body, timeout=self.timeout)
        except OSError as exc:  # refused, reset or timed out: MLflow is down
            raise StageError(
                f"MLflow at {self.url} is not answering "
                f"({getattr(exc, 'reason', exc)}); run the platform stage "
                f"again"
            ) from None

    def _get(self, path: str, **query: str) -> tuple[int, Any]:
        return self._request("GET", f"{self.url}/api/2.0/mlflow/{path}?{urlencode(query)}")

    def run(self, run_id: str) -> dict[str, Any]:
        """``{"status": ..., "error": ..., "metrics": {...}}`` of one run."""
        status, body = self._get("runs/get", run_id=run_id)
        if status != 200:
            raise StageError(f"MLflow has no run {run_id}: HTTP {status} {body}")
        run = body["run"]
        tags = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}
        metrics = {m["key"]: m["value"] for m in run.get("data", {}).get("metrics", [])}
        return {
            "run_id": run_id,
            "status": run["info"]["status"],
            "error": tags.get("error"),
            "metrics": metrics,
        }

    def version_exists(self, name: str, version: str) -> bool:
        status, _ = self._get("model-versions/get", name=name, version=str(version))
        return status == 200

    def versions(self, name: str) -> list[str]:
        status, body = self._get("model-versions/search", filter=f"name='{name}'")
        if status != 200:
            return []
        return sorted((v["version"] for v in body.get("model_versions", [])), key=int)

    def alias(self, name: str, alias: str) -> str | None:
        status, body = self._get("registered-models/alias", name=name, alias=alias)
        return str(body["model_version"]["version"]) if status == 200 else None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        status, body = self._request(
            "POST",
            f"{self.url}/api/2.0/mlflow/registered-models/alias",
            {"name": name, "alias": alias, "version": str(version)},
        )
        if status != 200:
            raise StageError(
                f"could not point alias {alias} of {name} at version {version}: "
                f"HTTP {status} {body}"
            )

    # -- artifacts, through the server's artifact proxy (``mlflow server`` default) --------
    def _download_uri(self, name: str, version: str) -> str:
        status, body = self._get("model-versions/get-download-uri", name=name, version=str(version))
        if status != 200:
            raise StageError(
                f"no download location for {name} version {version}: HTTP {status} {body}"
            )
        uri: str = body["artifact_uri"]
        if not uri.startswith("mlflow-artifacts:/"):
            raise StageError(
                f"{name} version {version} is stored at {uri}, outside the server's artifact proxy"
            )
        return uri.removeprefix("mlflow-artifacts:").lstrip("/")

    def _files(self, path: str) -> list[str]:
        url = f"{self.url}/api/2.0/mlflow-artifacts/artifacts?{urlencode({'path': path})}"
        status, body = self._request("GET", url)
        if status != 200:
            raise StageError(f"cannot list artifacts at {path}: HTTP {status} {body}")
        found: list[str] = []
        for entry in body.get("files", []):
            child = f"{path}/{entry['path']}"
            found.extend(self._files(child) if entry.get("is_dir") else [child])
        return found

    def download_model(self, name: str, version: str, dest: Path) -> Path:
        """Copy every file of a model version into ``dest`` (the MLmodel directory)."""
        import urllib.request

        root = self._download_uri(name, version)
        for path in self._files(root):
            target = dest / path[len(root) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            url = f"{self.url}/api/2.0/mlflow-artifacts/artifacts/{quote(path)}"
            with urllib.request.urlopen(url, timeout=60) as resp:
                target.write_bytes(resp.read())
        if not (dest / "MLmodel").is_file():
            raise StageError(f"{name} version {version} has no MLmodel file at {root}")
        return dest
