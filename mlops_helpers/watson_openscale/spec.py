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
        Backend(
            "ibm",
            "IBM watsonx.ai and Watson OpenScale",
            ("ibm",),
            cloud=IBM,
            defaults={"poll_interval": 5.0},  # IBM's jobs take seconds to minutes
        ),
    ),
    settings=(
        # the quality gate: OpenScale's lower limits (a share of rows, 0 to 1)
        fraction("min_accuracy", 0.8, "the quality gate's lower limit on accuracy"),
        fraction("min_weighted_f1", 0.8, "the quality gate's lower limit on weighted F1"),
        fraction(
            "min_weighted_precision",
            None,
            "a lower limit on weighted precision (unset: reported, not gated)",
        ),
        fraction(
            "min_weighted_recall",
            None,
            "a lower limit on weighted recall (unset: reported, not gated)",
        ),
        count(
            "min_feedback_data_size",
            50,
            "labelled feedback rows the quality monitor needs before it reports a metric",
        ),
        count(
            "max_rows_per_evaluation", 1000, "the newest feedback rows one monitor run evaluates"
        ),
        # what the stages send
        count("score_requests", 5, "scoring requests the score stage sends"),
        count("rows_per_request", 4, "held-out rows in each scoring request"),
        count("feedback_rows", 200, "held-out rows the feedback stage logs with their labels"),
        fraction(
            "feedback_label_noise",
            0.0,
            "the share of feedback labels made wrong on purpose (above about 0.2 the gate fails)",
        ),
        # bounded waits
        seconds("deploy_timeout", 600.0, "how long a deployment may take to become ready on IBM"),
        seconds(
            "payload_timeout", 120.0, "how long scored requests may take to reach the payload log"
        ),
        seconds("monitor_timeout", 900.0, "how long a quality monitor run may take on IBM"),
        seconds(
            "subscription_timeout",
            600.0,
            "how long an OpenScale subscription or service provider may take to become active",
        ),
        seconds(
            "space_timeout",
            300.0,
            "how long a new deployment space may take to become active on IBM",
        ),
        seconds("feedback_timeout", 300.0, "how long logged feedback may take to be stored on IBM"),
        # the IBM account (the ibm backend)
        text("ibm_api_key", "your IBM Cloud API key (secret)"),
        text("ibm_wml_url", "the watsonx.ai Runtime URL, e.g. https://us-south.ml.cloud.ibm.com"),
        text(
            "ibm_openscale_url",
            "the Watson OpenScale URL, e.g. https://api.aiopenscale.cloud.ibm.com",
        ),
        text("ibm_service_instance_id", "your Watson OpenScale instance's id (its data mart)"),
        text("ibm_space_name", "the deployment space to use (default: wos-space-<your initials>)"),
        text("ibm_cos_crn", "the Cloud Object Storage instance's CRN: creating a space needs it"),
        text(
            "ibm_wml_instance_crn", "the watsonx.ai Runtime instance's CRN a new space is bound to"
        ),
        text("ibm_wml_instance_name", "the name a new space gives that instance", "wml"),
        text(
            "ibm_hardware_spec",
            "the deployment's hardware specification (S: 1 vCPU, 4 GB RAM)",
            "S",
        ),
        text(
            "ibm_software_spec",
            "the model's software specification (default: the one whose scikit-learn trained it)",
        ),
        text("ibm_ca_bundle", "a CA certificate file to trust (a private endpoint)"),
        text("ibm_iam_url", "the IAM token service's URL", "https://iam.cloud.ibm.com"),
        text(
            "ibm_platform_url", "the platform (spaces) URL (default: the SDK's, from ibm_wml_url)"
        ),
        Setting(
            "ibm_model_runtime",
            "ibm-runtime",
            "where the model is trained: ibm-runtime (the scikit-learn IBM serves) or project",
            choices=("ibm-runtime", "project"),
        ),
        Setting(
            "ibm_rate_limit_retries",
            4,
            "how often a request answered 429 (too many requests) is sent again",
            int,
            0,
        ),
        seconds("ibm_retry_after_max", 60.0, "the longest Retry-After wait honoured"),
        text(
            "model_name",
            "the stored model's name (default: the model module's); your initials are added",
        ),
    ),
)
