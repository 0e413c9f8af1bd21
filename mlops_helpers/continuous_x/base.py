"""What every continuous_x backend offers the stages, and the HTTP calls they share.

The training and evaluation services and MLflow speak HTTP the same way on loopback and on
a Chameleon floating IP; only where they run, how a build is made and how an environment
is (re)deployed differ per backend.
"""

from __future__ import annotations

from typing import Any

from mlops_helpers.continuous_x.mlflow_rest import MlflowRest
from mlops_helpers.errors import StageError
from mlops_helpers.pipeline import StageContext
from mlops_helpers.servers import http_json


class ServicesBackend:
    """Shared part: platform URLs in state, training and evaluation over HTTP."""

    poll_interval = 0.1  # a run on iris ends within a second or two

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    # -- platform addresses ------------------------------------------------------------
    def urls(self) -> dict[str, str]:
        platform = self.ctx.state.get("platform") or {}
        if not platform.get("urls"):
            raise StageError(f"no platform in {self.ctx.run_dir}: run the platform stage first")
        urls: dict[str, str] = platform["urls"]
        return urls

    def mlflow(self) -> MlflowRest:
        return MlflowRest(self.urls()["mlflow"])

    # -- the two services ----------------------------------------------------------------
    def _call(self, service: str, path: str, body: Any, timeout: float) -> tuple[int, Any]:
        url = f"{self.urls()[service]}{path}"
        try:
            return http_json("POST", url, body, timeout=timeout)
        except OSError as exc:
            raise StageError(
                f"the {service} service at {url} is not answering "
                f"({getattr(exc, 'reason', exc)}); run the platform stage "
                f"again"
            ) from None

    def start_training(self, request: dict[str, Any]) -> dict[str, Any]:
        status, body = self._call("training", "/train", request, timeout=30)
        if status >= 300 or not isinstance(body, dict) or not body.get("run_id"):
            error = body.get("error") if isinstance(body, dict) else body
            if status == 503:  # the service is up, MLflow behind it is not
                raise StageError(
                    f"the training service cannot work: {error}; run the platform stage again"
                )
            raise StageError(f"training service refused the request: HTTP {status}: {error}")
        return body

    def set_threshold(self, min_accuracy: float) -> None:
        """Give the evaluation service the pipeline's threshold before it judges (here: the
        one it was deployed with stays; the evaluate stage still holds the answer to
        ``min_accuracy``). A request never carries a threshold."""

    def evaluate(self, run_id: str, min_accuracy: float) -> dict[str, Any]:
        """The evaluation service's verdict against the pipeline's ``min_accuracy``, read
        when the gate runs."""
        self.set_threshold(min_accuracy)
        status, body = self._call("evaluation", "/evaluate", {"run_id": run_id}, 120)
        if status != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else body
            if status == 503:
                raise StageError(
                    f"the evaluation service cannot work: {error}; run the platform stage again"
                )
            raise StageError(
                f"evaluation service could not evaluate run {run_id}: HTTP {status}: {error}"
            )
        return body

    # -- per backend -----------------------------------------------------------------------
    def start_platform(self) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, model_name: str, version: str) -> dict[str, Any]:
        raise NotImplementedError

    def deploy(self, environment: str, bundle: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def live_figures(self, since: float | None = None) -> dict[str, Any] | None:
        """Live traffic figures per environment and version (None: this backend has none);
        with ``since``, of the requests answered at or after that UNIX time only."""
        return None

    def served(self, environment: str) -> dict[str, Any] | None:
        """What the environment's app says it serves (``/version``), or None if not up."""
        deployment = (self.ctx.state.get("deployments") or {}).get(environment)
        if not deployment:
            return None
        try:
            status, body = http_json("GET", f"{deployment['url']}/version", timeout=5)
        except OSError:
            return None
        return body if status == 200 and isinstance(body, dict) else None
