"""Local backend: MLflow, both services and three app environments as loopback servers.

Nothing is mocked: the services and the app are the very files under
``scenarios/continuous_x/``, each run with uvicorn in its own process (forked from a warm
launcher, launcher.py), talking to a real MLflow tracking server.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlops_helpers.continuous_x.base import ServicesBackend
from mlops_helpers.continuous_x.bundle import make_bundle
from mlops_helpers.continuous_x.launcher import BUILD_APP, ROUTER_APP, SERVICE_APPS
from mlops_helpers.continuous_x.registry import (
    REGISTRY,
    ROUTER_ENVIRONMENTS,
    model_name,
    scenario_dir,
)
from mlops_helpers.errors import StageError
from mlops_helpers.launcher_client import WarmLauncher
from mlops_helpers.mlflow_server import start_mlflow_server
from mlops_helpers.servers import ManagedServer, free_port, http_json

SERVICES = dict(zip(("training", "evaluation"), SERVICE_APPS, strict=True))

# the services' MLflow client gives up quickly when MLflow is down, instead of retrying
# for minutes while the caller waits
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@REGISTRY.register("local")
class LocalBackend(ServicesBackend):
    @property
    def builds_dir(self) -> Path:
        return self.ctx.run_dir / "builds"

    def _alive(self, servers: dict[str, Any]) -> bool:
        return bool(servers) and all(ManagedServer.from_dict(s).alive() for s in servers.values())

    def start_platform(self) -> dict[str, Any]:
        """MLflow and both services at once: the services only need MLflow's address, which
        is fixed before anything starts, and they do not call it until asked to train.
        The services are forked from the warm launcher (launcher.py), which starts beside
        MLflow and later forks the apps and the router too."""
        current = self.ctx.state.get("platform") or {}
        if self._alive(current.get("servers", {})):
            self.ctx.say("platform already running: reusing it")
            return dict(current)
        for name, server in current.get("servers", {}).items():  # a partly dead platform:
            self.ctx.say(f"platform incomplete: stopping the old {name}")  # no orphans
            ManagedServer.from_dict(server).stop(self.ctx.tracker)
        tracker, run_dir = self.ctx.tracker, self.ctx.run_dir
        # paths first: cleanup runs newest first, so they go after the processes using them
        tracker.add("path", "mlflow-store", path=str(run_dir / "mlflow"))
        tracker.add("path", "builds", path=str(self.builds_dir))
        self.builds_dir.mkdir(parents=True, exist_ok=True)
        mlflow_port = free_port()
        env = {
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "MODEL_NAME": model_name(self.ctx.settings),
            "TRAINING_EXPERIMENT": self.ctx.settings.name("continuous-x"),
            "GATE_FILE": str(self.gate_file),
            **CLIENT_ENV,
        }
        services = str(scenario_dir() / "services")
        names = ("mlflow", *SERVICES)
        with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
            launcher = pool.submit(self.launcher.url)  # once, for both services

            def start(kind: str) -> ManagedServer:
                if kind == "mlflow":
                    return start_mlflow_server(run_dir, tracker, port=mlflow_port)
                launcher.result()
                request = {"app": SERVICES[kind], "cwd": services, "env": env}
                return self.launcher.start(f"{kind}-service", request)

            servers = dict(zip(names, pool.map(start, names), strict=True))
        self.set_threshold(self.ctx.settings.min_accuracy)  # the service's one channel
        return {
            "urls": {name: server.url for name, server in servers.items()},
            "servers": {name: server.to_dict() for name, server in servers.items()},
        }

    @property
    def gate_file(self) -> Path:
        return self.ctx.run_dir / "evaluation-gate.json"

    def set_threshold(self, min_accuracy: float) -> None:
        """The pipeline's threshold where the evaluation service reads it at each request."""
        import json

        tmp = self.gate_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"min_accuracy": min_accuracy}))
        tmp.replace(self.gate_file)

    def build(self, model_name: str, version: str) -> dict[str, Any]:
        import shutil

        self.builds_dir.mkdir(parents=True, exist_ok=True)
        download = self.builds_dir / f".download-v{version}"
        shutil.rmtree(download, ignore_errors=True)
        try:
            model_dir = self.mlflow().download_model(model_name, version, download)
            return make_bundle(
                scenario_dir() / "app", model_dir, self.builds_dir, model_name, version
            )
        finally:
            shutil.rmtree(download, ignore_errors=True)

    def deploy(self, environment: str, bundle: dict[str, Any]) -> dict[str, Any]:
        """Blue-green: the bundle's app starts beside the environment's current one and
        takes its traffic only once healthy; the old app stops last. A deploy that fails
        leaves the environment serving what it served."""
        deployments = self.ctx.state.get("deployments") or {}
        current = deployments.get(environment)
        old = ManagedServer.from_dict(current["server"]) if current else None
        if current and old and current["tag"] == bundle["tag"] and old.alive():
            return dict(current)  # already serving exactly this build
        path = Path(bundle["path"])
        if not (path / "manifest.json").is_file():
            raise StageError(f"build {bundle['tag']} is missing at {path}; run build again")
        server = self._start_app(environment, path, None)
        deployed = {
            "environment": environment,
            "url": server.url,
            "tag": bundle["tag"],
            "model_version": bundle["model_version"],
            "server": server.to_dict(),
        }
        try:
            if environment in ROUTER_ENVIRONMENTS:
                self.route({**deployments, environment: deployed})
        except BaseException:
            server.stop(self.ctx.tracker)
            raise
        if old is not None:
            old.stop(self.ctx.tracker)
        return deployed

    # -- the services, apps and router, forked from a warm launcher (launcher.py) --------
    @property
    def launcher(self) -> WarmLauncher:
        """It outlives CLI calls; cleanup stops it."""
        argv = [sys.executable, "-m", "mlops_helpers.continuous_x.launcher", "{port}"]
        return WarmLauncher(self.ctx, "launcher", "app-launcher", argv)

    def _start_app(self, environment: str, bundle: Path, port: int | None) -> ManagedServer:
        """The environment's app on ``port`` (a free one if None), healthy, tracked."""
        env = {"BUNDLE_DIR": str(bundle), "APP_ENVIRONMENT": environment}
        request = {"app": BUILD_APP, "cwd": str(bundle), "env": env}
        return self.launcher.start(f"app-{environment}", request, port)

    # -- the canary router: production's address -----------------------------------------
    @property
    def routes_file(self) -> Path:
        return self.ctx.run_dir / "routes.json"

    def canary_weight(self) -> float:
        return float(self.ctx.settings.canary_weight)

    def route(self, deployments: dict[str, Any]) -> dict[str, Any]:
        """Write the routes (production, canary, weight) and make sure the router runs."""
        import json

        upstreams = {
            env: {"url": d["url"], "model_version": d["model_version"]}
            for env, d in deployments.items()
            if env in ROUTER_ENVIRONMENTS
        }
        tmp = self.routes_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"weight": self.canary_weight(), "upstreams": upstreams}))
        tmp.replace(self.routes_file)
        router = self.ctx.state.get("router") or {}
        if router and ManagedServer.from_dict(router["server"]).alive():
            return dict(router)
        self.ctx.tracker.add("path", "routes", path=str(self.routes_file))
        request = {
            "app": ROUTER_APP,
            "cwd": str(self.ctx.run_dir),
            "env": {"ROUTES_FILE": str(self.routes_file)},
        }
        server = self.launcher.start("router", request, health_path="/router/health")
        router = {"url": server.url, "server": server.to_dict()}
        self.ctx.state.update(router=router)
        return router

    def live_figures(self, since: float | None = None) -> dict[str, Any] | None:
        """The router's figures per environment and model version (None: no router); with
        ``since``, of the requests answered at or after that UNIX time only."""
        router = self.ctx.state.get("router")
        if not router:
            return None
        query = "" if since is None else f"?since={since!r}"
        try:
            status, body = http_json("GET", f"{router['url']}/router/stats{query}", timeout=10)
        except OSError as exc:
            raise StageError(
                f"the canary router at {router['url']} is not answering "
                f"({getattr(exc, 'reason', exc)})"
            ) from None
        if status != 200 or not isinstance(body, dict):
            raise StageError(f"the canary router answered HTTP {status}: {body}")
        return body
