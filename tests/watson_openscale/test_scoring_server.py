"""The online deployment: WML payloads in, predictions and probabilities out; bad input 4xx."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_helpers.servers import http_json
from mlops_helpers.watson_openscale import payload


def _post(ctx: Any, body: Any = None, raw: bytes | None = None,
          url: str | None = None) -> tuple[int, Any]:
    return http_json("POST", url or ctx.state.get("deployment")["scoring_url"], body, raw=raw,
                     headers={"Content-Type": "application/json"})


def _count(ctx: Any) -> int:
    return int(ctx.backend.payload_count(ctx.state.get("subscription")))


def _fields(ctx: Any) -> list[str]:
    return list(ctx.state.get("subscription")["feature_fields"])


def test_valid_request_gets_predictions_and_probabilities_and_is_logged(deployed) -> None:
    fields = _fields(deployed)
    before = _count(deployed)
    status, answer = _post(deployed, payload.from_rows(fields, [[0.0] * 64, [16.0] * 64]))
    assert status == 200, answer
    block = answer["predictions"][0]
    assert block["fields"] == ["prediction", "probability"]
    for label, probabilities in block["values"]:
        assert 0 <= label <= 9 and len(probabilities) == 10
        assert abs(sum(probabilities) - 1) < 1e-3
        assert probabilities.index(max(probabilities)) == label
    assert _count(deployed) == before + 1
    record = deployed.backend.store.payload_records(
        deployed.state.get("deployment")["deployment_id"], 1)[0]
    assert record["n_rows"] == 2 and record["response"] == answer
    assert record["request"]["input_data"][0]["fields"] == fields


def test_fields_in_another_order_are_reordered(deployed) -> None:
    fields = _fields(deployed)
    row = [float(i % 17) for i in range(64)]
    _, straight = _post(deployed, payload.from_rows(fields, [row]))
    _, reversed_ = _post(deployed, payload.from_rows(fields[::-1], [row[::-1]]))
    assert straight == reversed_


BAD = {
    "not json": (None, b"{not json", 400, "not JSON"),
    "no input_data": ({"values": [[1]]}, None, 400, "input_data"),
    "wrong field names": ("rename", None, 400, "unknown ['pixel_x']"),
    "too few features": ("short", None, 400, "row 0 has 63 values"),
    "non-numeric value": ("text", None, 400, "are not finite numbers within"),
    "boolean value": ("bool", None, 400, "not finite numbers"),
    "pandas index column": ("index", None, 400, "pandas index column"),
    "empty values": ("empty", None, 400, "non-empty list of rows"),
}


def _bad_body(kind: Any, fields: list[str]) -> Any:
    row: list[Any] = [1.0] * 64
    if kind == "rename":
        return payload.from_rows([*fields[:-1], "pixel_x"], [row])
    if kind == "short":
        return {"input_data": [{"fields": fields, "values": [row[:-1]]}]}
    if kind in ("text", "bool"):
        row[5] = "dark" if kind == "text" else True
        return {"input_data": [{"fields": fields, "values": [row]}]}
    if kind == "index":
        return {"input_data": [{"fields": ["Unnamed: 0", *fields], "values": [[0, *row]]}]}
    if kind == "empty":
        return {"input_data": [{"fields": fields, "values": []}]}
    return kind


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_request_gets_4xx_with_message_and_is_not_logged(deployed, case: str) -> None:
    body, raw, status, message = BAD[case]
    before = _count(deployed)
    got, answer = _post(deployed, _bad_body(body, _fields(deployed)), raw=raw)
    assert got == status, answer
    assert message in answer["errors"][0]["message"]
    assert _count(deployed) == before
    # and the deployment keeps serving
    ok, _ = _post(deployed, payload.from_rows(_fields(deployed), [[0.0] * 64]))
    assert ok == 200


def test_unknown_deployment_id_is_404(deployed) -> None:
    url = deployed.state.get("deployment")["scoring_url"].replace("/deployments/",
                                                                  "/deployments/x")
    status, answer = _post(deployed, payload.from_rows(_fields(deployed), [[0.0] * 64]), url=url)
    assert status == 404 and "is not served here" in answer["errors"][0]["message"]


def test_health_names_the_served_version(deployed) -> None:
    record = deployed.state.get("deployment")
    status, answer = http_json("GET", record["scoring_url"].split("/ml/")[0] + "/health")
    assert status == 200
    assert answer["model_version"] == record["model_version"] == "1"
    assert answer["deployment_id"] == record["deployment_id"]
