"""Lambda ``MLOps-CheckTrainingStatus``: where is a SageMaker training job now?

Event (what the pipeline's ``train_status`` stage sends)::

    {"TrainingJobName": "byo-train-jd-20260101-120000"}

Answer::

    {"TrainingJobName": ..., "TrainingJobStatus": "InProgress" | "Completed",
     "SecondaryStatus": ..., "ModelArtifacts": "s3://.../model.tar.gz" | null}

A job that ``Failed`` or was ``Stopped`` raises ``TrainingJobFailed`` with SageMaker's
FailureReason, so the Lambda invocation fails and so does the pipeline stage that called it.
"""

from __future__ import annotations

from typing import Any

FINISHED_BAD = ("Failed", "Stopped")


class BadEvent(ValueError):
    """The event does not have the documented shape."""


class TrainingJobFailed(RuntimeError):
    """The training job ended without a model."""


def _client() -> Any:
    import boto3  # present in the Lambda runtime

    return boto3.client("sagemaker")


def check(job_name: str, client: Any) -> dict[str, Any]:
    job = client.describe_training_job(TrainingJobName=job_name)
    status = job["TrainingJobStatus"]
    if status in FINISHED_BAD:
        reason = job.get("FailureReason") or "no reason given"
        raise TrainingJobFailed(f"training job {job_name} is {status}: {reason}")
    return {
        "TrainingJobName": job_name,
        "TrainingJobStatus": status,
        "SecondaryStatus": job.get("SecondaryStatus"),
        "ModelArtifacts": (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
    }


def handler(event: dict[str, Any], context: Any = None, client: Any = None) -> dict[str, Any]:
    name = event.get("TrainingJobName") if isinstance(event, dict) else None
    if not isinstance(name, str) or not name:
        raise BadEvent('event must be {"TrainingJobName": "<job name>"}')
    return check(name, client or _client())
