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
does the pipeline stage, so a bad model never reaches production. With ``"ModelDigest"``
in the event, every answer must carry ``model_digest=<that digest>`` in its
``CustomAttributes`` (the container sets it), else ``WrongModel``: the test talked to
another model than the one deployed.

Wired to EventBridge (``"detail-type": "SageMaker Training Job State Change"``), it smoke-
tests the endpoint named by the function's ``SMOKE_TEST_ENDPOINT`` variable with the
label-first CSV at ``SMOKE_TEST_DATA`` (s3://...) against ``MIN_ACCURACY`` once a job is
``Completed`` and that endpoint serves the job's model; other events are answered with
``{"Skipped": reason}``.
"""

from __future__ import annotations

import os
from typing import Any

DETAIL_TYPE = "SageMaker Training Job State Change"


class BadEvent(ValueError):
    """The event does not have the documented shape."""


class EndpointError(RuntimeError):
    """The endpoint failed or answered something that is not one label per row."""


class SmokeTestFailed(RuntimeError):
    """The endpoint works, but its predictions are not good enough."""


class WrongModel(EndpointError):
    """The endpoint answered, but not with the model the pipeline deployed."""


def _client(service: str = "sagemaker-runtime") -> Any:
    import boto3  # present in the Lambda runtime

    return boto3.client(service)


def to_csv(rows: list[list[float]]) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n"


def parse_labels(text: str) -> list[int]:
    labels = []
    for line in text.splitlines():
        if line.strip():
            labels.append(int(float(line)))
    return labels


def check_model(endpoint: str, answer: dict[str, Any], digest: str | None) -> None:
    if digest is None:
        return
    attributes = str(answer.get("CustomAttributes") or "")
    served = dict(p.split("=", 1) for p in attributes.split(",") if "=" in p).get("model_digest")
    if served != digest:
        raise WrongModel(
            f"endpoint {endpoint} answered with model {str(served)[:12]}, not "
            f"the deployed {digest[:12]}"
        )


def predict(
    client: Any, endpoint: str, rows: list[list[float]], batch: int, digest: str | None = None
) -> list[int]:
    predictions: list[int] = []
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        try:
            answer = client.invoke_endpoint(
                EndpointName=endpoint,
                ContentType="text/csv",
                Accept="text/csv",
                Body=to_csv(part).encode(),
            )
            text = answer["Body"].read().decode()
            labels = parse_labels(text)
        except Exception as exc:  # any failure of the endpoint fails the smoke test
            reason = f"{type(exc).__name__}: {exc}"
            raise EndpointError(f"endpoint {endpoint} failed: {reason}") from exc
        check_model(endpoint, answer, digest)
        if len(labels) != len(part):
            raise EndpointError(
                f"endpoint {endpoint} answered {len(labels)} labels for "
                f"{len(part)} rows: {text[:200]!r}"
            )
        predictions.extend(labels)
    return predictions


def validate(event: Any) -> tuple[str, list[list[float]], list[int], float, int, str | None]:
    if not isinstance(event, dict):
        raise BadEvent("event must be a JSON object")
    endpoint, rows, labels = event.get("EndpointName"), event.get("Rows"), event.get("Labels")
    if not isinstance(endpoint, str) or not endpoint:
        raise BadEvent("event needs EndpointName")
    if not isinstance(rows, list) or not rows or not isinstance(labels, list):
        raise BadEvent("event needs non-empty Rows and Labels lists")
    if len(rows) != len(labels):
        raise BadEvent(f"{len(rows)} Rows but {len(labels)} Labels")
    digest = event.get("ModelDigest")
    if digest is not None and (not isinstance(digest, str) or not digest):
        raise BadEvent("ModelDigest must be the model's sha256")
    return (
        endpoint,
        rows,
        [int(v) for v in labels],
        float(event.get("MinAccuracy", 0.0)),
        max(int(event.get("BatchSize", 100)), 1),
        digest,
    )


def _serves(sagemaker: Any, endpoint: str, artifact: str) -> str | None:
    """None when ``endpoint`` serves ``artifact``; else why not."""
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    for variant in config["ProductionVariants"]:
        model = sagemaker.describe_model(ModelName=variant["ModelName"])
        if model["PrimaryContainer"].get("ModelDataUrl") == artifact:
            return None
    return f"endpoint {endpoint} does not serve {artifact} yet"


def _read_rows(s3: Any, uri: str) -> tuple[list[list[float]], list[int]]:
    bucket, key = uri[len("s3://") :].split("/", 1)
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    rows, labels = [], []
    for line in text.splitlines():
        if line.strip():
            values = [float(v) for v in line.split(",")]
            labels.append(int(values[0]))
            rows.append(values[1:])
    return rows, labels


def from_state_change(event: dict[str, Any], sagemaker: Any, s3: Any) -> dict[str, Any]:
    """The smoke-test event for a training-state event, or ``{"Skipped": reason}``."""
    if event.get("detail-type") != DETAIL_TYPE or event.get("source") != "aws.sagemaker":
        raise BadEvent(f"expected a {DETAIL_TYPE!r} event from aws.sagemaker")
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    job, status = detail.get("TrainingJobName"), detail.get("TrainingJobStatus")
    if status != "Completed":
        return {"Skipped": f"training job {job} is {status}: no model to test"}
    endpoint, data = os.environ.get("SMOKE_TEST_ENDPOINT"), os.environ.get("SMOKE_TEST_DATA")
    if not endpoint or not data or not data.startswith("s3://"):
        raise BadEvent("set SMOKE_TEST_ENDPOINT and SMOKE_TEST_DATA (s3://...) on the function")
    artifact = (detail.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    why_not = _serves(sagemaker, endpoint, artifact)
    if why_not:
        return {"Skipped": why_not}
    rows, labels = _read_rows(s3, data)
    return {
        "EndpointName": endpoint,
        "Rows": rows,
        "Labels": labels,
        "MinAccuracy": float(os.environ.get("MIN_ACCURACY", "0.9")),
    }


def handler(
    event: dict[str, Any],
    context: Any = None,
    client: Any = None,
    sagemaker: Any = None,
    s3: Any = None,
) -> dict[str, Any]:
    if isinstance(event, dict) and "detail-type" in event:
        event = from_state_change(event, sagemaker or _client("sagemaker"), s3 or _client("s3"))
        if "Skipped" in event:
            return event
    endpoint, rows, labels, minimum, batch, digest = validate(event)
    predictions = predict(client or _client(), endpoint, rows, batch, digest)
    accuracy = sum(p == t for p, t in zip(predictions, labels, strict=True)) / len(labels)
    result = {
        "EndpointName": endpoint,
        "Rows": len(rows),
        "Accuracy": accuracy,
        "MinAccuracy": minimum,
        "Predictions": predictions,
    }
    if accuracy < minimum:
        raise SmokeTestFailed(
            f"endpoint {endpoint}: accuracy {accuracy:.4f} on {len(rows)} "
            f"held-out rows is below the threshold {minimum}"
        )
    return result
