"""Cloud accounts more than one scenario's backends use (a scenario's own live in its spec)."""

from __future__ import annotations

from mlops_helpers.scenario import Cloud, text

AWS = Cloud(
    "aws",
    (("aws_access_key_id", "aws_secret_access_key"), ("aws_profile",)),
    "an IAM access key pair, or a profile from ~/.aws (boto3's own variables)",
    (
        text("aws_region", "the AWS region every resource is made in"),
        text("sagemaker_role_arn", "the IAM role SageMaker assumes for training and hosting"),
        text("s3_bucket", "the S3 bucket for training data and model artifacts"),
        text("dvc_s3_url", "the DVC remote on S3 (s3://bucket/path)"),
    ),
)
