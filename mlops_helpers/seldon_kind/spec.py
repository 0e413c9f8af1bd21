"""seldon_kind, declared: its settings, backends, pipeline and notebook."""

from __future__ import annotations

from mlops_helpers.scenario import Backend, Scenario, Setting, Tool, count, seconds, text

SCENARIO = Scenario(
    name="seldon_kind",
    title="Seldon Core + Jenkins + KIND",
    notebook="01_seldon_kind.ipynb",
    pipeline_module="mlops_helpers.seldon_kind.stages",
    exercises_module="mlops_helpers.exercises.seldon_kind",
    backends=(
        Backend(
            "local",
            "Seldon's own Python model servers as processes on 127.0.0.1",
            tools=(Tool("git"),),
            runtime="seldon",
        ),
        Backend(
            "kind",
            "a throwaway Kubernetes-in-Docker cluster with the Seldon Core operator",
            tools=(
                Tool(
                    "kind",
                    "kind is not installed: the seldon_kind cluster test cannot run here; "
                    "its files are validated instead",
                ),
                Tool("helm", "helm is not installed: the Seldon operator cannot be installed here"),
                Tool("kubectl", "kubectl is not installed: manifests are validated offline only"),
            ),
            docker_engine=True,
        ),
    ),
    settings=(
        Setting(
            "news_c",
            10.0,
            "inverse regularisation of the news classifier",
            float,
            0.0,
            exclusive_minimum=True,
        ),
        count("replicas", 1, "model server replicas per deployment"),
        text("approver", "who approves the production change", "tech-lead"),
        text(
            "seldon_chart_repo",
            "the Seldon Core Helm chart repository",
            "https://storage.googleapis.com/seldon-charts",
        ),
        text("seldon_core_version", "the Seldon Core operator version", "1.18.2"),
        Setting("keep_environments", False, "keep the kind cluster after cleanup"),
        seconds("kind_timeout", None, "how long the kind cluster may take to start"),
        seconds("rollout_timeout", None, "how long a deployment may take to roll out"),
        text("models_dir", "the folder of model sources (default: the scenario's own)"),
    ),
)
