"""What every backend of this scenario does; the stages only talk to this interface.

Two lifetimes: what one build starts (the test endpoint, a candidate model) is recorded in
the run directory's tracker, which ``cleanup`` releases after every build; production is
recorded apart, under ``<run_dir>/production/``, so it outlives builds and only a later
``deploy_prod`` (which swaps it) or ``teardown`` (which removes it) touches it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mlops_helpers.pipeline import StageContext, StateStore
from mlops_helpers.resources import ResourceTracker
from mlops_helpers.sagemaker_byo import lambdas


class ByoBackend(ABC):
    #: seconds between status polls (a local job is done at once; SageMaker takes minutes)
    poll_interval: float = 0.2

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    # -- production's own records -------------------------------------------------------
    @property
    def production_dir(self) -> Path:
        path = self.ctx.run_dir / "production"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def production_tracker(self) -> ResourceTracker:
        return ResourceTracker(self.production_dir)

    @property
    def production_state(self) -> StateStore:
        return StateStore(self.production_dir / "state.json")

    def production(self) -> dict[str, Any] | None:
        """The production endpoint's record, when one is serving."""
        record: dict[str, Any] | None = self.production_state.get("endpoint")
        return record

    def hand_to_production(self, rid: str) -> None:
        """Move one resource from this build's tracker to production's: cleanup keeps it."""
        resource = self.ctx.tracker.get(*rid.split(":", 1))
        if resource is None:
            return
        self.production_tracker.add(
            resource.kind, resource.name, module=resource.module, **resource.params
        )
        self.ctx.tracker.forget(rid)

    # -- the stages' needs --------------------------------------------------------------
    @abstractmethod
    def build(self) -> dict[str, Any]:
        """Check and package the container code; returns at least ``uri`` and ``tag``."""

    @abstractmethod
    def upload_data(self, files: dict[str, Path]) -> dict[str, str]:
        """Put the split CSVs where training reads them; returns split -> URI."""

    @abstractmethod
    def start_training(
        self,
        job_name: str,
        image: dict[str, Any],
        hyperparameters: dict[str, str],
        data: dict[str, str],
    ) -> dict[str, Any]:
        """Start (locally: run) a training job under the container contract."""

    @abstractmethod
    def model_digest(self, model_uri: str) -> str:
        """sha256 of ``model.joblib`` in the job's ``model.tar.gz`` (see ``store.model_digest``)."""

    @abstractmethod
    def sagemaker_client(self) -> Any:
        """An object with ``describe_training_job`` (what check_training_status needs)."""

    @abstractmethod
    def runtime_client(self) -> Any:
        """An object with ``invoke_endpoint`` (what invoke_endpoint needs)."""

    @abstractmethod
    def deploy(
        self, env: str, job_name: str, model_uri: str, image: dict[str, Any], digest: str
    ) -> dict[str, Any]:
        """Find or create the endpoint of ``env`` serving ``model_uri``; ``prod`` is updated
        in place (same endpoint name, new model) and handed to production's records."""

    @abstractmethod
    def check_endpoint(self, record: dict[str, Any], digest: str) -> None:
        """Raise unless the endpoint of ``record`` is up and serves the model ``digest``."""

    @abstractmethod
    def teardown_production(self) -> list[str]:
        """Remove the production endpoint and what only it uses; returns what was removed."""

    def training_log(self, job_name: str) -> str:
        return ""

    def run_lambda(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        client = (
            self.sagemaker_client()
            if name == lambdas.CHECK_TRAINING_STATUS
            else self.runtime_client()
        )
        return lambdas.run(name, event, client)
