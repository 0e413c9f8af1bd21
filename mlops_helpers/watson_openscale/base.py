"""What every backend of this scenario does; the stages only talk to this interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mlops_helpers.pipeline import StageContext


class OpenScaleBackend(ABC):
    """A model repository with spaces, online deployments and an OpenScale-style monitor."""

    #: seconds between status polls (local things are ready at once; IBM's take a while)
    poll_interval: float = 0.2

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    def preflight(self, trained_with: str) -> dict[str, Any]:
        """Before any work: settings, credentials and a runtime for scikit-learn
        ``trained_with``; raises with a message when the backend cannot run the pipeline."""
        return {}

    def model_sklearn(self) -> str:
        """The scikit-learn the model is trained with for this backend."""
        from importlib.metadata import version

        return version("scikit-learn")

    def train_model(
        self, module: Any, split: Any, config: dict[str, Any], model_path: Path
    ) -> dict[str, Any]:
        """Train the model module's model, save it to ``model_path``; returns
        ``sklearn_version`` and ``held_out_accuracy``. Here: in this environment."""
        import numpy as np
        import sklearn
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):  # ~1,400 rows: BLAS threads cost 5x more than they save
            model = module.train(split.X_train, split.y_train, config)
        labels, _ = module.predict(model, split.X_test)
        module.save(model, model_path)
        return {
            "sklearn_version": sklearn.__version__,
            "held_out_accuracy": float(np.mean(np.asarray(labels) == split.y_test)),
        }

    @abstractmethod
    def ensure_space(self, name: str) -> dict[str, Any]:
        """Find the space by name (removing duplicates, oldest kept) or create it.

        Returns ``space_id``, ``name``, ``created`` and ``removed_duplicates``."""

    @abstractmethod
    def store_model(
        self, space: dict[str, Any], name: str, model_dir: Path, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the model as a new version of one model (an unchanged model is reused).

        Returns ``model_id``, ``name``, ``version`` and ``action`` (created/updated/unchanged).
        """

    @abstractmethod
    def deploy(self, space: dict[str, Any], model: dict[str, Any], name: str) -> dict[str, Any]:
        """Create or update the online deployment ``name`` so it serves ``model``'s version.

        Returns ``deployment_id``, ``name``, ``scoring_url``, ``model_version``, ``action``.
        """

    @abstractmethod
    def subscribe(
        self,
        deployment: dict[str, Any],
        model: dict[str, Any],
        schema: dict[str, Any],
        parameters: dict[str, Any],
        thresholds: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Create or update the deployment's subscription and its quality monitor."""

    @abstractmethod
    def score(self, deployment: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Send one WML payload to the deployment (and make sure it is payload-logged)."""

    @abstractmethod
    def payload_count(self, subscription: dict[str, Any]) -> int:
        """Records in the subscription's payload log."""

    @abstractmethod
    def payload_logged(self, subscription: dict[str, Any], bodies: list[dict[str, Any]]) -> int:
        """How many of these scoring requests the payload log holds (matched by content)."""

    @abstractmethod
    def log_feedback(
        self, subscription: dict[str, Any], fields: list[str], rows: list[list[Any]]
    ) -> int:
        """Store labelled rows (features + label column last) in the feedback log, each
        once (keyed by content); returns how many were new."""

    @abstractmethod
    def promote(self, model: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
        """Make the gated model version the production one (the stage checked the gate)."""

    @abstractmethod
    def run_quality_monitor(
        self, subscription: dict[str, Any], thresholds: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """One quality monitor run against ``thresholds`` (read when the gate runs):
        ``status``, ``message``, ``n_rows`` and ``metrics``.

        ``status`` is ``finished`` with metrics (each with threshold and pass/fail), or
        ``insufficient_feedback`` with a message and no metrics."""
