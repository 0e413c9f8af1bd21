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
        text("chi_site", "the Chameleon site the VMs are leased at", "KVM@TACC"),
        text("os_project_name", "your Chameleon project, e.g. CHI-123456"),
        text("ssh_key_name", "the key pair the VMs let in (its name on the Chameleon site)"),
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
            defaults={"poll_interval": 10.0},  # leases and VMs take minutes
        ),
    ),
    settings=(
        # what the training service trains
        text(
            "model_name",
            "the registered model's name; your initials are added",
            "continuous-x-model",
        ),
        text("dataset", "the data set the training service trains and evaluates on", "iris"),
        Setting(
            "model_type",
            "logistic_regression",
            "the model the training service trains",
            choices=("logistic_regression", "random_forest"),
        ),
        Setting(
            "C",
            1.0,
            "logistic regression's inverse regularisation strength (smaller: a simpler model)",
            float,
            0.0,
            exclusive_minimum=True,
        ),
        count("max_iter", 500, "logistic regression's most solver iterations"),
        count("n_estimators", 50, "the random forest's number of trees"),
        count("max_depth", None, "the random forest's deepest tree (unset: no limit)"),
        seconds("train_timeout", 120.0, "how long a training run may take"),
        # the gates
        fraction(
            "min_accuracy",
            0.9,
            "the evaluation gate: a run gets a model version only at or above this accuracy",
        ),
        fraction(
            "canary_weight", 0.1, "the share of production's traffic the router sends to canary"
        ),
        count(
            "canary_min_requests",
            50,
            "requests canary and production must each serve before the canary is judged",
        ),
        fraction(
            "canary_max_error_increase",
            0.01,
            "how much higher canary's error rate may be than production's (0.01: one point)",
        ),
        Setting(
            "canary_max_p50_ratio",
            2.0,
            "canary's median latency may be at most production's times this, plus the slack",
            float,
            1.0,
        ),
        Setting(
            "canary_p50_slack_ms",
            1.0,
            "milliseconds added to that median limit (loopback medians are a few ms)",
            float,
            0.0,
        ),
        Setting(
            "canary_gate",
            "on",
            "off: promote to production without live figures, on a backend that has none",
            choices=("on", "off"),
        ),
        # which version, where
        text("version", "the model version a stage acts on (default: the one the pipeline chose)"),
        Setting(
            "revert_environment",
            "production",
            "the environment the revert stage puts its previous version back in",
            choices=("staging", "canary", "production"),
        ),
        # the Chameleon account and its VMs (the chameleon backend)
        text("os_auth_url", "your Chameleon site's Keystone URL (from its openrc file)"),
        text("os_application_credential_id", "your Chameleon application credential's id"),
        text("os_application_credential_secret", "your Chameleon application credential's secret"),
        text("chi_flavor", "the VMs' flavor the lease reserves", "m1.large"),
        text("chi_image", "the VMs' image", "CC-Ubuntu24.04"),
        count("lease_hours", 8, "how long the Chameleon lease lasts, in hours"),
        seconds("provision_timeout", 3600.0, "how long leasing and starting the VMs may take"),
        Setting("ssh_port", 22, "the SSH port the VMs' security group opens", int, 1, 65535),
        text(
            "api_allowed_cidr",
            "the one address range that may reach the cluster's API, e.g. 198.51.100.7/32",
        ),
        text("gitops_repo", "the git URL Argo CD syncs from: your fork of this repository"),
    ),
)
