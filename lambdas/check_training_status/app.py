"""Lambda ``MLOps-CheckTrainingStatus``: where is a SageMaker training job now?

Event (what the pipeline's ``train_status`` stage sends)::

    {"TrainingJobName": "byo-train-jd-20260101-120000"}

Answer::

    {"TrainingJobName": ..., "TrainingJobStatus": "InProgress" | "Completed",
     "SecondaryStatus": ..., "ModelArtifacts": "s3://.../model.tar.gz" | null}

A job that ``Failed`` or was ``Stopped`` raises ``TrainingJobFailed`` with SageMaker's
FailureReason, so the Lambda invocation fails and so does the pipeline stage that called it.

The same handler takes the EventBridge event SageMaker sends on every status change
(``"detail-type": "SageMaker Training Job State Change"``, ``"source": "aws.sagemaker"``);
its ``detail`` is the job's description at that change, so no API call is needed.
"""

from __future__ import annotations

from typing import Any

FINISHED_BAD = ("Failed", "Stopped")
DETAIL_TYPE = "SageMaker Training Job State Change"


class BadEvent(ValueError):
    """The event does not have the documented shape."""


class TrainingJobFailed(RuntimeError):
    """The training job ended without a model."""


def _client() -> Any:
    import boto3  # present in the Lambda runtime

    return boto3.client("sagemaker")


def check(job_name: str, client: Any) -> dict[str, Any]:
    return summarize(job_name, client.describe_training_job(TrainingJobName=job_name))


def summarize(job_name: str, job: dict[str, Any]) -> dict[str, Any]:
    status = job.get("TrainingJobStatus")
    if not isinstance(status, str):
        raise BadEvent(f"no TrainingJobStatus for training job {job_name}")
    if status in FINISHED_BAD:
        reason = job.get("FailureReason") or "no reason given"
        raise TrainingJobFailed(f"training job {job_name} is {status}: {reason}")
    return {
        "TrainingJobName": job_name,
        "TrainingJobStatus": status,
        "SecondaryStatus": job.get("SecondaryStatus"),
        "ModelArtifacts": (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
    }


def state_change(event: Any) -> dict[str, Any] | None:
    """The ``detail`` of an EventBridge training-state event; None for a direct invoke."""
    if not isinstance(event, dict) or "detail-type" not in event:
        return None
    if event.get("detail-type") != DETAIL_TYPE or event.get("source") != "aws.sagemaker":
        raise BadEvent(
            f"an EventBridge event of type {event.get('detail-type')!r} from "
            f"{event.get('source')!r}; expected {DETAIL_TYPE!r} from aws.sagemaker"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict) or not isinstance(detail.get("TrainingJobName"), str):
        raise BadEvent("the event's detail has no TrainingJobName")
    return detail


def handler(event: dict[str, Any], context: Any = None, client: Any = None) -> dict[str, Any]:
    detail = state_change(event)
    if detail is not None:
        return summarize(detail["TrainingJobName"], detail)
    name = event.get("TrainingJobName") if isinstance(event, dict) else None
    if not isinstance(name, str) or not name:
        raise BadEvent(
            'event must be {"TrainingJobName": "<job name>"} or a SageMaker '
            "Training Job State Change event"
        )
    return check(name, client or _client())
