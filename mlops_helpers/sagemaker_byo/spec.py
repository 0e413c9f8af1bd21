"""sagemaker_byo, declared: its settings, backends, pipeline and notebook."""

from __future__ import annotations

from mlops_helpers.clouds import AWS
from mlops_helpers.scenario import Backend, Scenario, Setting, count, fraction, seconds, text

SCENARIO = Scenario(
    name="sagemaker_byo",
    title="SageMaker, bring your own container",
    notebook="02_sagemaker_byo.ipynb",
    pipeline_module="mlops_helpers.sagemaker_byo.stages",
    exercises_module="mlops_helpers.exercises.sagemaker_byo",
    backends=(
        Backend("local", "the container's train and serve programs, endpoints on loopback"),
        Backend("aws", "ECR, S3, SageMaker training jobs and endpoints", ("aws",), cloud=AWS),
    ),
    settings=(
        text("name_prefix", "the first part of every resource name", "byo"),
        text("dataset", "the training data set", "iris"),
        count("max_depth", 4, "the decision tree's maximum depth"),
        count("min_samples_leaf", 1, "the fewest samples in a leaf"),
        Setting(
            "criterion", "gini", "the split criterion", choices=("gini", "entropy", "log_loss")
        ),
        fraction("min_accuracy", 0.9, "the smoke test's accuracy threshold"),
        seconds("max_runtime", 600.0, "a training job's longest run"),
        seconds("status_timeout", 3600.0, "how long a training job may take"),
        count("serve_workers", 2, "the local endpoint's server workers"),
        text("training_instance_type", "the training instance type", "ml.m5.large"),
        count("training_instance_count", 1, "training instances"),
        text("endpoint_instance_type", "the endpoint instance type", "ml.t2.medium"),
        count("endpoint_instance_count", 1, "endpoint instances"),
        Setting("gate_demos", True, "show each gate saying no"),
        text("aws_account_id", "the AWS account (default: asked of STS)"),
        text("aws_default_region", "botocore's region name"),
        text("aws_endpoint_url", "an AWS endpoint to use instead of the public one"),
        text("aws_session_token", "a temporary AWS credential's session token"),
        text("ecr_repository", "the ECR repository of the image"),
        seconds("endpoint_timeout", None, "how long an endpoint may take to come up"),
        text("container_dir", "the container's source folder (default: the scenario's own)"),
    ),
)
