"""What this scenario serves: three model folders (one per serving style), four deployments.

The reusable linear server is deployed twice (iris and wine) from one image, which is the
point of a reusable server: the model is chosen by the manifest's ``modelUri``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_helpers import paths
from mlops_helpers.config import Settings

PREBUILT, REUSABLE, EMBEDDED = (
    "pre-built reusable server",
    "custom reusable server",
    "custom server, model embedded",
)


@dataclass(frozen=True)
class ModelFolder:
    name: str  # folder under scenarios/seldon_kind/models/
    style: str
    image: str  # image repository name (local: a staged folder under run_dir/images/)
    server_class: str


@dataclass(frozen=True)
class Deployment:
    name: str  # SeldonDeployment name before the attendee suffix
    folder: str
    train_args: tuple[str, ...]  # after train.py; {out} and {corpus} and {c} are filled in
    embedded: bool = False  # True: the artifact goes into the image, not the model store


FOLDERS: dict[str, ModelFolder] = {
    f.name: f
    for f in (
        ModelFolder("sklearn_prebuilt", PREBUILT, "sklearn-server", "SKLearnServer"),
        ModelFolder("linear_server", REUSABLE, "linear-server", "LinearServer"),
        ModelFolder("news_classifier", EMBEDDED, "news-classifier", "NewsClassifier"),
    )
}

DEPLOYMENTS: tuple[Deployment, ...] = (
    Deployment("sklearn-iris", "sklearn_prebuilt", ("{out}",)),
    Deployment("linear-iris", "linear_server", ("iris", "{out}")),
    Deployment("linear-wine", "linear_server", ("wine", "{out}")),
    Deployment("news-classifier", "news_classifier", ("{corpus}", "{out}", "{c}"), embedded=True),
)

#: Seldon's own prepackaged server, played locally by the image of our sklearn folder (in a
#: cluster the operator runs Seldon's image for it)
SELDON_SERVERS = {"SKLEARN_SERVER": "sklearn_prebuilt"}
#: our reusable server, registered with the operator (seldon-config ``predictor_servers``)
#: under this name, so that it gets modelUri handling as the prepackaged ones do
CUSTOM_SERVERS = {"LINEAR_SERVER": "linear_server"}
#: every implementation name -> the folder whose image serves it locally
PREPACKAGED = {**SELDON_SERVERS, **CUSTOM_SERVERS}


def models_dir(settings: Settings) -> Path:
    """The model folders; a setting lets tests point at a copy (a broken test, a bad model)."""
    configured = settings.models_dir
    return Path(configured) if configured else paths.scenarios_dir() / "seldon_kind" / "models"


def corpus_path() -> Path:
    """The labelled news corpus that ships with the package (no download at run time)."""
    return Path(__file__).resolve().parent / "data" / "news_corpus.csv"


def deployment_name(settings: Settings, deployment: Deployment) -> str:
    return settings.name(deployment.name)
