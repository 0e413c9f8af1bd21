"""What every backend of this scenario does; the stages only talk to this interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mlops_helpers.pipeline import StageContext
from mlops_helpers.sagemaker_byo import lambdas


class ByoBackend(ABC):
    #: seconds between status polls (a local job is done at once; SageMaker takes minutes)
    poll_interval: float = 0.2

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

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
    def sagemaker_client(self) -> Any:
        """An object with ``describe_training_job`` (what check_training_status needs)."""

    @abstractmethod
    def runtime_client(self) -> Any:
        """An object with ``invoke_endpoint`` (what invoke_endpoint needs)."""

    @abstractmethod
    def deploy(
        self, env: str, job_name: str, model_uri: str, image: dict[str, Any]
    ) -> dict[str, Any]:
        """Find or create the endpoint of ``env`` serving ``model_uri``."""

    def training_log(self, job_name: str) -> str:
        return ""

    def run_lambda(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        client = (
            self.sagemaker_client()
            if name == lambdas.CHECK_TRAINING_STATUS
            else self.runtime_client()
        )
        return lambdas.run(name, event, client)
