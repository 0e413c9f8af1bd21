"""Cloud accounts more than one scenario's backends use (a scenario's own live in its spec)."""

from __future__ import annotations

from mlops_helpers.scenario import Cloud

AWS = Cloud(
    "aws",
    (("aws_access_key_id", "aws_secret_access_key"), ("aws_profile",)),
    ("aws_region", "sagemaker_role_arn", "s3_bucket", "dvc_s3_url"),
    "sagemaker_byo and dvc_cml run on their local backends only",
)
