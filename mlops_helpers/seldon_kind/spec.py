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
            "the news classifier's inverse regularisation C: a new value trains a new model",
            float,
            0.0,
            exclusive_minimum=True,
        ),
        count("replicas", 1, "model server replicas of each SeldonDeployment"),
        text(
            "approver",
            "who approves the production change; recorded in its merge commit",
            "tech-lead",
        ),
        text(
            "seldon_chart_repo",
            "the Helm repository of the Seldon Core operator chart (kind backend)",
            "https://storage.googleapis.com/seldon-charts",
        ),
        text(
            "seldon_core_version",
            "the Seldon Core operator chart version installed (kind backend)",
            "1.18.2",
        ),
        Setting(
            "keep_environments",
            False,
            "keep the staging/production kind cluster after cleanup, so production outlives "
            "a CI build (kind backend)",
        ),
        seconds(
            "kind_timeout",
            1800.0,
            "how long the whole kind integration test may take: cluster, operator, rollout, "
            "test and deletion",
        ),
        seconds(
            "rollout_timeout",
            300.0,
            "how long the SeldonDeployments and the operator may take to become available on "
            "the kind cluster",
        ),
        text(
            "models_dir",
            "the folder of model sources to test and train (default: scenarios/seldon_kind/"
            "models; the exercise points it at your copy)",
        ),
    ),
)
