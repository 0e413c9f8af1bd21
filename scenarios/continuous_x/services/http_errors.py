"""One error shape for both services: every error answers ``{"error": "..."}`` as JSON.

Malformed bodies (not JSON, non-finite numbers, nesting too deep to parse) are the caller's
fault: 4xx. Anything else that escapes is still answered as JSON (500), never plain text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


class MlflowUnavailable(Exception):
    """MLflow did not answer: the service cannot work, and says so (503)."""


@contextmanager
def mlflow_calls() -> Iterator[None]:
    """Turn a connection failure to MLflow into ``MlflowUnavailable`` naming where."""
    import os

    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        text = str(exc)
        if (
            "Max retries exceeded" in text
            or "Connection refused" in text
            or ("API request to" in text and "failed" in text)
        ):
            where = os.environ.get("MLFLOW_TRACKING_URI", "(MLFLOW_TRACKING_URI unset)")
            raise MlflowUnavailable(f"MLflow at {where} is not answering") from None
        raise


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10]
        )
        return JSONResponse(status_code=422, content={"error": f"invalid request: {problems}"})

    @app.exception_handler(HTTPException)
    async def _refused(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)})

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": "request body nested too deep"})

    @app.exception_handler(MlflowUnavailable)
    async def _mlflow_down(_: Request, exc: MlflowUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"error": str(exc)})

    @app.exception_handler(Exception)
    async def _failed(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            status_code=500, content={"error": f"internal error: {type(exc).__name__}"}
        )
