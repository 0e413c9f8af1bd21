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
        text(
            "name_prefix",
            "the first part of every training job and endpoint name (<prefix>-<part>-<you>)",
            "byo",
        ),
        text(
            "dataset",
            "the scikit-learn data set the job trains on: iris, digits, wine or breast_cancer",
            "iris",
        ),
        # no minimum here: the container's own train refuses a depth below 1 (the gate demo)
        Setting("max_depth", 4, "the decision tree's maximum depth (a hyperparameter of train)"),
        count("min_samples_leaf", 1, "the fewest training rows a leaf of the tree may hold"),
        Setting(
            "criterion",
            "gini",
            "how the tree measures a split's quality (a hyperparameter of train)",
            choices=("gini", "entropy", "log_loss"),
        ),
        fraction(
            "min_accuracy",
            0.9,
            "the smoke test's gate: the share of held-out rows the test endpoint must get right",
        ),
        Setting(
            "max_runtime",
            600,
            "the longest a training job may run before it is stopped, in seconds",
            int,
            1,
        ),
        seconds("status_timeout", 3600.0, "how long train_status waits for the training job"),
        seconds(
            "endpoint_timeout",
            1800.0,
            "how long deploy waits for a SageMaker endpoint to be InService (aws backend)",
        ),
        seconds(
            "poll_interval",
            30.0,
            "how often the aws backend (local: every 0.1 s) asks SageMaker about a job or an "
            "endpoint",
        ),
        # one answers a workshop's requests; each more is a fresh interpreter (~90 MiB)
        count("serve_workers", 1, "worker processes of each local endpoint's server"),
        text(
            "training_instance_type",
            "the instance type a training job runs on (aws backend)",
            "ml.m5.large",
        ),
        count("training_instance_count", 1, "how many instances a training job runs on"),
        text(
            "endpoint_instance_type",
            "the instance type an endpoint serves on (aws backend)",
            "ml.t2.medium",
        ),
        count("endpoint_instance_count", 1, "how many instances an endpoint serves on"),
        Setting(
            "gate_demos",
            True,
            "the notebook also shows both gates saying no (starts extra jobs on aws)",
        ),
        text("aws_region", "the AWS region every resource is made in"),
        text("aws_default_region", "the region when aws_region is not set (botocore's name)"),
        text("aws_account_id", "the AWS account's number (default: asked of STS)"),
        text(
            "aws_endpoint_url",
            "one endpoint for every AWS service instead of the public ones (a VPC endpoint, "
            "LocalStack, the tests' fake)",
        ),
        text("aws_session_token", "the session token of a temporary AWS credential"),
        text("sagemaker_role_arn", "the IAM role SageMaker runs training jobs and models with"),
        text("s3_bucket", "the bucket of data and models (default: byo-artifacts-...-<you>)"),
        text("ecr_repository", "the ECR repository of the image (default: byo-scikit-<you>)"),
        text(
            "lambda_check_training_status",
            "the deployed Lambda train_status calls (default: its code, run in-process)",
        ),
        text(
            "lambda_invoke_endpoint",
            "the deployed Lambda smoke_test calls (default: its code, run in-process)",
        ),
        text(
            "container_dir",
            "the container's source folder (default: scenarios/sagemaker_byo/container)",
        ),
    ),
)
