"""Local backend: the integration test runs against the servers ``serve_local`` started."""

from __future__ import annotations

from typing import Any

from mlops_helpers.errors import StageError
from mlops_helpers.seldon_kind.base import SeldonBackend
from mlops_helpers.seldon_kind.registry import REGISTRY
from mlops_helpers.seldon_kind.serving import warm_launcher

TEST_ENVIRONMENT = "test"


@REGISTRY.register("local")
class LocalBackend(SeldonBackend):
    name = "local"

    def integration_test(
        self, manifests: dict[str, str], targets: list[dict[str, Any]]
    ) -> dict[str, Any]:
        urls = self.environment(TEST_ENVIRONMENT).urls()
        missing = [t["name"] for t in targets if t["name"] not in urls]
        if missing:
            raise StageError(f"no test server for {', '.join(missing)}: run serve_local first")
        for target in targets:
            target["endpoint"] = urls[target["name"]].removeprefix("http://")
        # started by the launcher that started the servers: it has imported SeldonClient
        return self.run_e2e(targets, launcher=warm_launcher(self.ctx, self.python))
