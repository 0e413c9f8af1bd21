"""continuous_x, declared: its settings, backends, pipeline and notebook."""

from __future__ import annotations

from mlops_helpers.scenario import (
    Backend,
    Cloud,
    Scenario,
    Setting,
    Tool,
    count,
    fraction,
    seconds,
    text,
)

CHAMELEON = Cloud(
    "chameleon",
    (("os_auth_url", "os_application_credential_id", "os_application_credential_secret"),),
    "an OpenStack application credential from the Chameleon site's dashboard",
    (
        text("chi_site", "the Chameleon site", "KVM@TACC"),
        text("os_project_name", "the Chameleon project (allocation) name"),
        text("ssh_key_name", "the key pair the instances accept"),
    ),
    "continuous_x runs on its local backend (MLflow + apps on loopback) only",
)

SCENARIO = Scenario(
    name="continuous_x",
    title="Continuous-X on Chameleon",
    notebook="05_continuous_x.ipynb",
    pipeline_module="mlops_helpers.continuous_x.stages",
    exercises_module="mlops_helpers.exercises.continuous_x",
    backends=(
        Backend(
            "local",
            "MLflow, the training and evaluation services and three app environments on loopback",
            ("mlflow",),
        ),
        Backend(
            "chameleon",
            "python-chi, Terraform, Ansible/Kubespray, Argo CD and Workflows",
            ("chameleon",),
            (
                Tool(
                    "terraform",
                    "terraform is not installed: the Chameleon files are parsed "
                    "with python-hcl2 instead",
                ),
                Tool(
                    "ansible-playbook",
                    "ansible-playbook is not installed: the continuous_x "
                    "chameleon backend configures its servers with it",
                ),
                Tool(
                    "argo",
                    "the argo CLI is not installed: the continuous_x chameleon "
                    "backend submits its WorkflowTemplates with it",
                ),
                Tool("kubectl", "kubectl is not installed: manifests are validated offline only"),
            ),
            cloud=CHAMELEON,
        ),
    ),
    settings=(
        text("model_name", "the registered model's name", "continuous-x-model"),
        text("dataset", "the training data set", "iris"),
        Setting(
            "model_type",
            "logistic_regression",
            "the model trained",
            choices=("logistic_regression", "random_forest"),
        ),
        Setting(
            "C",
            1.0,
            "logistic regression's inverse regularisation",
            float,
            0.0,
            exclusive_minimum=True,
        ),
        count("max_iter", 500, "logistic regression's iterations"),
        count("n_estimators", 50, "the random forest's trees"),
        count("max_depth", None, "the random forest's depth (unlimited)"),
        fraction("min_accuracy", 0.9, "the evaluation service's accuracy gate"),
        seconds("train_timeout", 120.0, "how long a training run may take"),
        Setting(
            "revert_environment",
            "production",
            "the environment a revert rolls back",
            choices=("staging", "canary", "production"),
        ),
        fraction("canary_weight", 0.1, "the share of traffic the canary gets"),
        count("canary_min_requests", 50, "requests each side needs before the canary is judged"),
        fraction("canary_max_error_increase", 0.01, "canary error rate <= production's + this"),
        Setting(
            "canary_max_p50_ratio", 2.0, "canary median <= production's x this + slack", float, 1.0
        ),
        Setting("canary_p50_slack_ms", 1.0, "the slack on the canary's median (ms)", float, 0.0),
        Setting("canary_gate", None, "judge the canary before promotion", choices=("on", "off")),
        text("version", "the model version to deploy (default: the newest)"),
        text("chi_flavor", "the Chameleon instance flavor"),
        text("chi_image", "the Chameleon instance image"),
        count("lease_hours", None, "the Chameleon lease's length in hours"),
        seconds("provision_timeout", None, "how long provisioning may take"),
        Setting("ssh_port", None, "the SSH port the security group opens", int, 1, 65535),
        text("api_allowed_cidr", "the addresses the Kubernetes API is open to"),
        text("gitops_repo", "the GitOps repository Argo CD watches"),
    ),
)
