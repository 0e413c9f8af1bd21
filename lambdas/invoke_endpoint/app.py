"""Lambda ``MLOps-InvokeEndpoint-scikitbyo``: the smoke test of a deployed endpoint.

Event (what the pipeline's ``smoke_test`` stage sends)::

    {"EndpointName": "byo-test-jd",
     "Rows": [[5.1, 3.5, 1.4, 0.2], ...],     # held-out feature rows
     "Labels": [0, ...],                        # their true classes
     "MinAccuracy": 0.9,                        # the gate
     "BatchSize": 100}                          # rows per request (optional)

The rows go to the endpoint as ``text/csv``. Answer::

    {"EndpointName": ..., "Rows": 38, "Accuracy": 0.97, "MinAccuracy": 0.9,
     "Predictions": [0, ...]}

Raises ``EndpointError`` when the endpoint does not answer 200 with one label per row, and
``SmokeTestFailed`` when the accuracy is below ``MinAccuracy``: the invocation fails, and so
does the pipeline stage, so a bad model never reaches production.
"""

from __future__ import annotations

from typing import Any


class BadEvent(ValueError):
    """The event does not have the documented shape."""


class EndpointError(RuntimeError):
    """The endpoint failed or answered something that is not one label per row."""


class SmokeTestFailed(RuntimeError):
    """The endpoint works, but its predictions are not good enough."""


def _client() -> Any:
    import boto3  # present in the Lambda runtime

    return boto3.client("sagemaker-runtime")


def to_csv(rows: list[list[float]]) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n"


def parse_labels(text: str) -> list[int]:
    labels = []
    for line in text.splitlines():
        if line.strip():
            labels.append(int(float(line)))
    return labels


def predict(client: Any, endpoint: str, rows: list[list[float]], batch: int) -> list[int]:
    predictions: list[int] = []
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        try:
            answer = client.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv",
                                            Accept="text/csv", Body=to_csv(part).encode())
            text = answer["Body"].read().decode()
            labels = parse_labels(text)
        except Exception as exc:  # any failure of the endpoint fails the smoke test
            reason = f"{type(exc).__name__}: {exc}"
            raise EndpointError(f"endpoint {endpoint} failed: {reason}") from exc
        if len(labels) != len(part):
            raise EndpointError(f"endpoint {endpoint} answered {len(labels)} labels for "
                                f"{len(part)} rows: {text[:200]!r}")
        predictions.extend(labels)
    return predictions


def validate(event: Any) -> tuple[str, list[list[float]], list[int], float, int]:
    if not isinstance(event, dict):
        raise BadEvent("event must be a JSON object")
    endpoint, rows, labels = event.get("EndpointName"), event.get("Rows"), event.get("Labels")
    if not isinstance(endpoint, str) or not endpoint:
        raise BadEvent("event needs EndpointName")
    if not isinstance(rows, list) or not rows or not isinstance(labels, list):
        raise BadEvent("event needs non-empty Rows and Labels lists")
    if len(rows) != len(labels):
        raise BadEvent(f"{len(rows)} Rows but {len(labels)} Labels")
    return (endpoint, rows, [int(v) for v in labels], float(event.get("MinAccuracy", 0.0)),
            max(int(event.get("BatchSize", 100)), 1))


def handler(event: dict[str, Any], context: Any = None, client: Any = None) -> dict[str, Any]:
    endpoint, rows, labels, minimum, batch = validate(event)
    predictions = predict(client or _client(), endpoint, rows, batch)
    accuracy = sum(p == t for p, t in zip(predictions, labels, strict=True)) / len(labels)
    result = {"EndpointName": endpoint, "Rows": len(rows), "Accuracy": accuracy,
              "MinAccuracy": minimum, "Predictions": predictions}
    if accuracy < minimum:
        raise SmokeTestFailed(f"endpoint {endpoint}: accuracy {accuracy:.4f} on {len(rows)} "
                              f"held-out rows is below the threshold {minimum}")
    return result
