"""The two Lambda helpers' code (``lambdas/``), run in this process with a given client.

The same handler runs on AWS Lambda with boto3 clients, here with the local backend's
clients, and in tests with moto: one piece of logic for every path.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType
from typing import Any

from mlops_helpers import paths
from mlops_helpers.errors import StageError

CHECK_TRAINING_STATUS = "check_training_status"
INVOKE_ENDPOINT = "invoke_endpoint"


class LambdaError(StageError):
    """A Lambda handler raised; ``error_type`` is its exception's class name."""

    def __init__(self, function: str, error_type: str, message: str) -> None:
        super().__init__(f"lambda {function} raised {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.message = message


@cache
def load(name: str) -> ModuleType:
    path = paths.project_root() / "lambdas" / name / "app.py"
    if not path.is_file():
        raise StageError(f"lambda code {path} is missing")
    spec = importlib.util.spec_from_file_location(f"byo_lambda_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, event: dict[str, Any], client: Any) -> dict[str, Any]:
    """Call the handler as Lambda would; its exceptions become ``LambdaError``."""
    try:
        result: dict[str, Any] = load(name).handler(event, None, client=client)
    except Exception as exc:
        raise LambdaError(name, type(exc).__name__, str(exc)) from exc
    return result
