"""The toy pipeline: the same shape as the workshop's five, in a few lines."""

from __future__ import annotations

from typing import Any

from mlops_helpers.backends import BackendRegistry
from mlops_helpers.errors import GateFailed
from mlops_helpers.pipeline import Pipeline, Stage, StageContext

REGISTRY: BackendRegistry[Any] = BackendRegistry("toy")


@REGISTRY.register("local")
class LocalBackend:
    def __init__(self, ctx: StageContext) -> None:
        self.path = ctx.run_dir / "greeting.txt"


def greet(ctx: StageContext) -> dict[str, Any]:
    words = [ctx.settings.greeting] * ctx.settings.repeats
    ctx.backend.path.write_text(" ".join(words))
    return {"words": len(words), "file": str(ctx.backend.path)}


def check(ctx: StageContext) -> dict[str, Any]:
    words = len(ctx.backend.path.read_text().split()) if ctx.backend.path.exists() else 0
    if words < ctx.settings.min_words:
        raise GateFailed(f"the greeting has {words} words, fewer than {ctx.settings.min_words}")
    return {"words": words}


def cleanup(ctx: StageContext) -> dict[str, Any]:
    removed = ctx.backend.path.exists()
    ctx.backend.path.unlink(missing_ok=True)
    return {"removed": removed}


PIPELINE = Pipeline(
    "toy",
    [
        Stage("greet", greet, "write the greeting"),
        Stage("check", check, "the greeting is long enough", gate=True),
        Stage("cleanup", cleanup, "remove the greeting"),
    ],
    REGISTRY,
)
