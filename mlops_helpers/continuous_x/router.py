"""Production's address on the local backend: a small router that sends a fraction of live
requests to canary and the rest to production, and keeps each environment's figures.

This is what an ingress-nginx canary (``nginx.ingress.kubernetes.io/canary-weight``) does on
the cluster (``scenarios/continuous_x/k8s/canary/ingress.yaml``). Run with uvicorn:
``ROUTES_FILE=... uvicorn mlops_helpers.continuous_x.router:app``. The routes file (written
by the local backend on every deploy) names each environment's upstream address and model
version and the canary weight; it is re-read when it changes, so a redeploy needs no
restart. Figures are kept per environment *and* model version, so a promotion gate reads
the figures of exactly the version it would promote, and each request's time is kept, so
the gate compares canary with what production served in the same window.

    GET  /router/stats   {"weight": 0.1, "environments": {"canary": {"3": {...}}, ...}}
    GET  /router/stats?since=T   the same, counting only requests answered at or after T
    POST /router/reset   forget every figure
    *    anything else   forwarded to the chosen environment's app
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlops_helpers.continuous_x.registry import DEFAULT_WEIGHT

_MAX_SAMPLES = 10_000  # latency samples kept per environment and version


@dataclass
class Figures:
    """Counts and latencies of one environment's one model version."""

    requests: int = 0
    errors: int = 0  # 5xx answers and unreachable upstreams: the environment's fault
    client_errors: int = 0  # 4xx: the caller's fault, not counted against the model
    # (time answered, status, latency in ms) of the first _MAX_SAMPLES requests
    samples: list[tuple[float, int, float]] = field(default_factory=list)

    def add(self, status: int, latency_ms: float, at: float | None = None) -> None:
        self.requests += 1
        if status >= 500:
            self.errors += 1
        elif status >= 400:
            self.client_errors += 1
        if len(self.samples) < _MAX_SAMPLES:
            self.samples.append((time.time() if at is None else at, status, latency_ms))

    def summary(self, since: float | None = None) -> dict[str, Any]:
        """Counts, error rate and latency percentiles; with ``since``, only of the requests
        answered at or after that time (a UNIX timestamp)."""
        window = [s for s in self.samples if since is None or s[0] >= since]
        if since is None:
            requests, errors, client_errors = self.requests, self.errors, self.client_errors
        else:
            requests = len(window)
            errors = sum(1 for _, status, _ in window if status >= 500)
            client_errors = sum(1 for _, status, _ in window if 400 <= status < 500)
        ordered = sorted(latency for _, _, latency in window)

        def pct(q: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)

        return {
            "requests": requests,
            "errors": errors,
            "client_errors": client_errors,
            "error_rate": round(errors / requests, 4) if requests else None,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "first_at": window[0][0] if window else None,
            "last_at": window[-1][0] if window else None,
        }


class Routes:
    """The routes file, re-read whenever its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = None
        self.data: dict[str, Any] = {}

    def current(self) -> dict[str, Any]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            return self.data
        if stamp != self._stamp:
            self.data = json.loads(self.path.read_text())
            self._stamp = stamp
        return self.data


def choose(routes: dict[str, Any], draw: float) -> str:
    """Canary when it is deployed and the draw falls under its weight, else production."""
    upstreams = routes.get("upstreams", {})
    weight = float(routes.get("weight", DEFAULT_WEIGHT))
    if "canary" in upstreams and draw < weight:
        return "canary"
    return "production"


class Router:
    def __init__(self, routes_file: Path) -> None:
        self.routes = Routes(routes_file)
        self.lock = threading.Lock()
        self.figures: dict[str, dict[str, Figures]] = {}
        self.random = random.Random()
        self.client = httpx.AsyncClient(timeout=30.0)

    def record(self, environment: str, version: str, status: int, latency_ms: float) -> None:
        with self.lock:
            per_version = self.figures.setdefault(environment, {})
            per_version.setdefault(version, Figures()).add(status, latency_ms)

    def stats(self, since: float | None = None) -> dict[str, Any]:
        routes = self.routes.current()
        with self.lock:
            return {
                "weight": float(routes.get("weight", DEFAULT_WEIGHT)),
                "upstreams": routes.get("upstreams", {}),
                "environments": {
                    env: {v: f.summary(since) for v, f in versions.items()}
                    for env, versions in self.figures.items()
                },
            }

    async def forward(self, request: Request) -> Response:
        routes = self.routes.current()
        upstreams = routes.get("upstreams", {})
        if "production" not in upstreams:
            return JSONResponse({"error": "production is not deployed yet"}, status_code=503)
        if any(ord(c) < 32 or ord(c) == 127 for c in request.url.path):  # NUL, newline ...
            return JSONResponse({"error": "the path holds control characters"}, status_code=400)
        environment = choose(routes, self.random.random())
        upstream = upstreams[environment]
        body = await request.body()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")
        }
        start = time.perf_counter()
        try:
            answer = await self.client.request(
                request.method,
                f"{upstream['url']}{request.url.path}",
                params=request.query_params,
                content=body,
                headers=headers,
            )
            status, content = answer.status_code, answer.content
            media = answer.headers.get("content-type", "application/json")
        except httpx.HTTPError as exc:
            status, media = 502, "application/json"
            content = json.dumps(
                {"error": f"{environment} did not answer: {type(exc).__name__}"}
            ).encode()
        latency_ms = (time.perf_counter() - start) * 1000
        self.record(environment, str(upstream.get("model_version")), status, latency_ms)
        return Response(
            content,
            status_code=status,
            media_type=media,
            headers={
                "X-Environment": environment,
                "X-Model-Version": str(upstream.get("model_version")),
            },
        )


def create_app(routes_file: Path) -> Starlette:
    router = Router(routes_file)

    async def stats(request: Request) -> JSONResponse:
        since = request.query_params.get("since")
        try:
            return JSONResponse(router.stats(float(since) if since is not None else None))
        except ValueError:
            return JSONResponse({"error": f"since must be a UNIX time, not {since!r}"}, 400)

    async def reset(_: Request) -> JSONResponse:
        with router.lock:
            router.figures.clear()
        return JSONResponse({"reset": True})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        status = int(getattr(exc, "status_code", 500))
        return JSONResponse(
            {"error": str(getattr(exc, "detail", type(exc).__name__))}, status_code=status
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await router.client.aclose()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(
        routes=[
            Route("/router/health", health, methods=["GET"]),
            Route("/router/stats", stats, methods=["GET"]),
            Route("/router/reset", reset, methods=["POST"]),
            Route("/{path:path}", router.forward, methods=methods),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: refused, Exception: refused},
    )


app = create_app(Path(os.environ.get("ROUTES_FILE", "routes.json")))
