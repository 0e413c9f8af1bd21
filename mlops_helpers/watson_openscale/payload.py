"""WML-style scoring payloads: built without a pandas index column, and checked strictly.

``{"input_data": [{"fields": [...], "values": [[...], ...]}]}`` in, and
``{"predictions": [{"fields": ["prediction", "probability"], "values": [[label, [p, ...]]]}]}``
out. A DataFrame written with its index (``to_csv(index=True)``, ``reset_index()``) grows a
column such as ``Unnamed: 0`` or ``index``; the write-up's scoring broke on exactly that, so
the builder never sends one and the server names it when it sees one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

INDEX_LIKE = ("index", "level_0", "Unnamed: 0", "")
MAX_ROWS = 10_000
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_DIGITS = 30  # a longer integer literal is no feature value (and float() would overflow)
# |value| above this is no pixel intensity; far before float64's end, where a model's
# arithmetic (scaling, softmax) would overflow into inf / NaN
MAX_ABS = 1e12
PREDICTION_FIELDS = ["prediction", "probability"]
SCORING_PATH = "/ml/v4/deployments/{deployment_id}/predictions"  # WML's v4 scoring path


class PayloadError(ValueError):
    """A scoring request the deployment cannot score; the message says what is wrong."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def loads(raw: bytes) -> Any:
    """Strict JSON: no NaN / Infinity literals, no huge integers, bounded nesting and size;
    every refusal is a ``PayloadError`` with the reason (never a 5xx)."""
    import json

    if len(raw) > MAX_BODY_BYTES:
        raise PayloadError(f"the body has {len(raw)} bytes; at most {MAX_BODY_BYTES}", 413)

    def constant(name: str) -> Any:
        raise PayloadError(f"{name} is not a number JSON allows; send finite numbers")

    def integer(text: str) -> int:
        if len(text.lstrip("-")) > MAX_DIGITS:
            raise PayloadError(
                f"an integer of {len(text.lstrip('-'))} digits is no feature "
                f"value (at most {MAX_DIGITS} digits)"
            )
        return int(text)

    def real(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise PayloadError(f"{text} is outside the range of a 64-bit float")
        return value

    try:
        return json.loads(raw, parse_constant=constant, parse_int=integer, parse_float=real)
    except RecursionError:
        raise PayloadError("the body is nested too deeply to be a scoring payload") from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not UTF-8 text: {exc.reason}") from None
    except ValueError as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"the body is not JSON: {exc}") from None


def from_frame(frame: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """A payload from a DataFrame: the named feature columns only, never its index."""
    columns = (
        list(fields)
        if fields is not None
        else [str(c) for c in frame.columns if str(c) not in INDEX_LIKE]
    )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PayloadError(f"the frame has no column(s) {missing}")
    values = frame[columns].to_numpy(dtype=float).tolist()  # .to_numpy: no index travels
    return {"input_data": [{"fields": columns, "values": values}]}


def from_rows(fields: Sequence[str], rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    return {
        "input_data": [
            {"fields": list(fields), "values": [[float(v) for v in row] for row in rows]}
        ]
    }


def _number(value: Any) -> bool:
    """A finite feature value within ``MAX_ABS`` (bools and strings are not numbers)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(value) <= MAX_ABS
    except OverflowError:  # an int too large for a float
        return False


def parse(payload: Any, expected: Sequence[str]) -> list[list[float]]:
    """The rows of a payload, in the model's feature order, or ``PayloadError`` saying why."""
    if not isinstance(payload, dict) or not isinstance(payload.get("input_data"), list):
        raise PayloadError(
            'the body must be {"input_data": [{"fields": [...], "values": [[...]]}]}'
        )
    if len(payload["input_data"]) != 1:
        raise PayloadError(
            "input_data must hold exactly one {fields, values} object, "
            f"got {len(payload['input_data'])}"
        )
    block = payload["input_data"][0]
    fields, values = (
        (block.get("fields"), block.get("values")) if isinstance(block, dict) else (None, None)
    )
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise PayloadError("input_data[0].fields must be a list of field names")
    if not isinstance(values, list) or not values:
        raise PayloadError("input_data[0].values must be a non-empty list of rows")
    if len(values) > MAX_ROWS:
        raise PayloadError(f"{len(values)} rows in one request; at most {MAX_ROWS}", 413)
    index_like = [f for f in fields if f in INDEX_LIKE]
    if index_like:
        raise PayloadError(
            f"field(s) {index_like} look like a pandas index column: build the "
            "payload without the index (DataFrame.to_numpy(), index=False)"
        )
    unknown = [f for f in fields if f not in expected]
    missing = [f for f in expected if f not in fields]
    if unknown or missing or len(fields) != len(expected):
        raise PayloadError(
            f"fields do not match the model's {len(expected)} features: "
            f"unknown {unknown[:5]}, missing {missing[:5]}, "
            f"{len(fields)} given"
        )
    order = [fields.index(f) for f in expected]
    rows = []
    for i, row in enumerate(values):
        if not isinstance(row, list) or len(row) != len(fields):
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise PayloadError(f"row {i} has {got} values; {len(fields)} fields were named")
        bad = [j for j, v in enumerate(row) if not _number(v)]
        if bad:
            shown = repr(row[bad[0]])
            raise PayloadError(
                f"row {i}: value(s) at position {bad[:5]} are not finite "
                f"numbers within ±{MAX_ABS:g} ({shown[:40]})"
            )
        rows.append([float(row[j]) for j in order])
    return rows


def response(labels: Sequence[int], probabilities: Sequence[Sequence[float]]) -> dict[str, Any]:
    return {
        "predictions": [
            {
                "fields": PREDICTION_FIELDS,
                "values": [[int(y), list(p)] for y, p in zip(labels, probabilities, strict=True)],
            }
        ]
    }


def predictions(answer: dict[str, Any]) -> tuple[list[int], list[list[float]]]:
    """Labels and probabilities out of a WML scoring answer."""
    block = answer["predictions"][0]
    at = {name: i for i, name in enumerate(block["fields"])}
    values = block["values"]
    return (
        [int(v[at["prediction"]]) for v in values],
        [list(v[at["probability"]]) for v in values],
    )
