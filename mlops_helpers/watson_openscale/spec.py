"""watson_openscale, declared: its settings, backends, pipeline and notebook."""

from __future__ import annotations

from mlops_helpers.scenario import (
    Backend,
    Cloud,
    Scenario,
    Setting,
    count,
    fraction,
    seconds,
    text,
)

IBM = Cloud(
    "ibm",
    (("ibm_api_key",),),
    "an IBM Cloud API key (IAM)",
    (
        text("ibm_wml_url", "the watsonx.ai Runtime (Watson Machine Learning) URL"),
        text("ibm_openscale_url", "the Watson OpenScale URL"),
        text("ibm_service_instance_id", "the OpenScale service instance's id"),
        text("ibm_space_name", "the deployment space's name"),
        text("ibm_cos_crn", "Cloud Object Storage's CRN (only to create the space)"),
        text("ibm_wml_instance_crn", "watsonx.ai Runtime's CRN (only to create the space)"),
    ),
    "watson_openscale runs on its local backend (MLflow + SQLite monitor) only",
)

SCENARIO = Scenario(
    name="watson_openscale",
    title="Watson Machine Learning + OpenScale",
    notebook="03_watson_openscale.ipynb",
    pipeline_module="mlops_helpers.watson_openscale.stages",
    exercises_module="mlops_helpers.exercises.watson_openscale",
    backends=(
        Backend(
            "local", "MLflow registry and a scoring server; the monitor in SQLite", ("mlflow",)
        ),
        Backend("ibm", "IBM watsonx.ai and Watson OpenScale", ("ibm",), cloud=IBM),
    ),
    settings=(
        fraction("min_accuracy", 0.8, "the quality monitor's accuracy threshold"),
        fraction("min_weighted_f1", 0.8, "the quality monitor's weighted F1 threshold"),
        fraction("min_weighted_precision", None, "a weighted precision threshold (off)"),
        fraction("min_weighted_recall", None, "a weighted recall threshold (off)"),
        count("min_feedback_data_size", 50, "feedback rows a quality evaluation needs"),
        count("max_rows_per_evaluation", 1000, "the most feedback rows one evaluation reads"),
        count("score_requests", 5, "scoring requests the payload stage sends"),
        count("rows_per_request", 4, "rows in each scoring request"),
        count("feedback_rows", 200, "labelled feedback rows logged"),
        fraction("feedback_label_noise", 0.0, "the share of feedback labels flipped"),
        seconds("deploy_timeout", 600.0, "how long a deployment may take"),
        seconds("payload_timeout", None, "how long payload logging may take to show"),
        seconds("monitor_timeout", None, "how long a monitor run may take"),
        seconds("subscription_timeout", None, "how long a subscription may take"),
        seconds("space_timeout", None, "how long a deployment space may take"),
        seconds("feedback_timeout", None, "how long feedback logging may take to show"),
        text("ibm_hardware_spec", "the deployment's hardware specification"),
        text("ibm_software_spec", "the model's software specification"),
        text("ibm_wml_instance_name", "the watsonx.ai Runtime instance's name"),
        text("ibm_ca_bundle", "a CA file to trust (private endpoints)"),
        text("ibm_iam_url", "the IAM token URL (private endpoints)"),
        text("ibm_platform_url", "the platform (spaces) URL (private endpoints)"),
        Setting(
            "ibm_model_runtime",
            None,
            "where the model's runtime comes from",
            choices=("ibm-runtime", "project"),
        ),
        Setting("ibm_rate_limit_retries", None, "retries after HTTP 429", int, 0),
        seconds("ibm_retry_after_max", None, "the longest Retry-After honoured"),
        text("model_name", "the stored model's name"),
    ),
)
