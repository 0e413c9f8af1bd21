"""The inference app SageMaker talks to: ``GET /ping`` and ``POST /invocations``.

A bare ASGI app (no framework) so one CSV row costs little more than the prediction.
Input is ``text/csv`` (one row per line, no header) or ``application/json``
(``{"instances": [[...], ...]}`` or a list of rows). The answer uses the ``Accept`` type,
else the request's type. Bad input gets 400/405/406/413/415 and a JSON message, never a 5xx.

Every answer carries the served model's sha256 in ``X-Amzn-SageMaker-Custom-Attributes``
(``model_digest=...``), which SageMaker hands back as InvokeEndpoint's ``CustomAttributes``;
``GET /ping`` says it too. So a smoke test knows which model answered it.

Under ``serve --workers N`` each worker watches the master that started it and exits when
it is gone: a killed master never leaves orphaned workers serving the port.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import joblib
import numpy as np
import opt_ml
import sklearn

# Finite values are checked below, once, instead of inside every sklearn call.
sklearn.set_config(assume_finite=True)

MAX_BODY = int(os.environ.get("BYO_MAX_PAYLOAD_BYTES", 6 * 1024 * 1024))  # SageMaker: 6 MB
CSV, JSON = "text/csv", "application/json"
# the tree compares in float32: a larger value cannot mean anything to it
LARGEST = float(np.finfo(np.float32).max)
# what plain decimal numbers are made of; float() alone would also take "1_0", "nan", "inf"
NOT_A_NUMBER = re.compile(r"[^0-9eE+\-.,\s]")
MASTER_ENV = "BYO_SERVE_MASTER_PID"  # set by serve when it runs several workers
WATCH_INTERVAL_S = 0.2

_model = joblib.load(opt_ml.model_dir() / opt_ml.MODEL_FILE)
_meta = opt_ml.read_json(opt_ml.model_dir() / opt_ml.META_FILE)
N_FEATURES = int(_meta.get("n_features") or _model.n_features_in_)
MODEL_DIGEST = opt_ml.file_digest(opt_ml.model_dir() / opt_ml.MODEL_FILE)
IDENTITY = (b"x-amzn-sagemaker-custom-attributes", f"model_digest={MODEL_DIGEST}".encode())


def _exit_with_master(master: int) -> None:
    """A worker whose master died is re-parented; it then stops serving at once."""
    while os.getppid() == master:
        threading.Event().wait(WATCH_INTERVAL_S)
    os._exit(0)


def watch_master() -> None:
    master = int(os.environ.get(MASTER_ENV) or 0)
    if master and master != os.getpid():  # a worker process, not the master itself
        threading.Thread(
            target=_exit_with_master, args=(master,), daemon=True, name="watch-master"
        ).start()


watch_master()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_csv(text: str) -> np.ndarray:
    strange = NOT_A_NUMBER.search(text)  # one pass over the body, then float() per cell
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            if strange and NOT_A_NUMBER.search(line):
                raise ValueError
            rows.append([float(c) for c in line.split(",")])
        except ValueError:
            message = f"row {number}: not all values are numbers: {line[:80]!r}"
            raise BadRequest(400, message) from None
    return check_rows(rows)


def parse_json(text: str) -> np.ndarray:
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest(400, "body is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(400, f"body is not valid JSON: {exc}") from None
    rows = doc.get("instances") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise BadRequest(400, 'JSON body must be {"instances": [[...], ...]} or a list of rows')
    if rows and not isinstance(rows[0], list):
        rows = [rows]  # a single row
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row
        ):
            raise BadRequest(400, f"row {number}: every value must be a number")
    return check_rows(rows)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number; values must be finite numbers")


def check_rows(rows: list[list[float]]) -> np.ndarray:
    if not rows:
        raise BadRequest(400, "no rows in the request body")
    for number, row in enumerate(rows, start=1):
        if len(row) != N_FEATURES:
            raise BadRequest(
                400, f"row {number} has {len(row)} values; the model needs {N_FEATURES}"
            )
    try:
        X = np.asarray(rows, dtype=float)
    except OverflowError:  # an integer of hundreds of digits
        X = np.array([np.inf])
    if not np.isfinite(X).all() or (np.abs(X) > LARGEST).any():
        raise BadRequest(400, f"values must be finite numbers within +-{LARGEST:.4g}")
    return X


def media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def answer_type(content_type: str, accept: str) -> str:
    wanted = [media_type(a) for a in accept.split(",") if a.strip()] if accept else []
    for kind in wanted:
        if kind in (CSV, JSON):
            return kind
        if kind in ("*/*", "text/*", "application/*"):
            return content_type
    if wanted:
        raise BadRequest(406, f"cannot answer as {accept!r}; use text/csv or application/json")
    return content_type


def predict(body: bytes, content_type: str, accept: str) -> tuple[str, bytes]:
    kind = media_type(content_type)
    if kind not in (CSV, JSON):
        raise BadRequest(
            415,
            f"content type {content_type or '(none)'!r} is not supported; "
            f"send text/csv or application/json",
        )
    out = answer_type(kind, accept)
    if not body.strip():
        raise BadRequest(400, "the request body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "the request body is not UTF-8 text") from None
    X = parse_csv(text) if kind == CSV else parse_json(text)
    labels = _model.predict(X).tolist()
    if out == CSV:
        return CSV, ("\n".join(str(v) for v in labels) + "\n").encode()
    return JSON, json.dumps({"predictions": labels}).encode()


async def respond(
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                IDENTITY,
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def error(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await respond(send, status, JSON, json.dumps({"error": message}).encode(), extra)


async def read_body(scope: Scope, receive: Receive) -> bytes:
    headers = dict(scope["headers"])
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest(413, f"body of {int(declared)} bytes is over the {MAX_BODY} limit")
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(413, f"body is over the {MAX_BODY} byte limit")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/ping":
        if method not in ("GET", "HEAD"):
            await error(send, 405, "use GET for /ping", [(b"allow", b"GET, HEAD")])
            return
        await respond(
            send, 200, JSON, json.dumps({"status": "ok", "model_digest": MODEL_DIGEST}).encode()
        )
        return
    if path != "/invocations":
        await error(send, 404, f"no route {path}; use GET /ping or POST /invocations")
        return
    if method != "POST":
        await error(send, 405, "use POST for /invocations", [(b"allow", b"POST")])
        return
    headers = dict(scope["headers"])
    try:
        body = await read_body(scope, receive)
        kind, payload = predict(
            body,
            headers.get(b"content-type", b"").decode("latin-1"),
            headers.get(b"accept", b"").decode("latin-1"),
        )
    except BadRequest as exc:
        await error(send, exc.status, exc.message)
        return
    except Exception as exc:  # a bug must not take the worker down: report it as a 500
        await error(send, 500, f"prediction failed: {type(exc).__name__}: {exc}")
        return
    await respond(send, 200, kind, payload)
