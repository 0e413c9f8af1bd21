"""Manifests: templates render valid SeldonDeployments; invalid ones are refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_helpers.errors import GateFailed
from mlops_helpers.paths import scenarios_dir
from mlops_helpers.seldon_kind import manifests
from mlops_helpers.seldon_kind.catalog import DEPLOYMENTS
from mlops_helpers.seldon_kind.cluster import model_store_volume

MODELS = scenarios_dir() / "seldon_kind" / "models"
VALUES = {
    "deployment": "news-classifier-jd",
    "model": "news-classifier",
    "version": "0123456789ab",
    "replicas": 1,
    "model_uri": "pvc://models-jd/x/1",
    "image": "seldon-workshop/linear-server:0123456789ab",
}


def rendered(folder: str) -> dict[str, Any]:
    return manifests.render(MODELS / folder / "seldondeployment.yaml", VALUES)


@pytest.mark.parametrize("folder", sorted({d.folder for d in DEPLOYMENTS}))
def test_every_template_renders_a_valid_seldon_deployment(folder: str) -> None:
    doc = rendered(folder)
    assert doc["apiVersion"] == "machinelearning.seldon.io/v1"
    assert manifests.errors_of(doc) == []


def test_namespace_is_checked_by_kubernetes_validate() -> None:
    assert manifests.errors_of(manifests.namespace("seldon-staging-jd")) == []
    bad = manifests.namespace("seldon-staging-jd")
    bad["metadata"]["nmae"] = bad["metadata"].pop("name")
    errors = manifests.errors_of(bad)
    assert errors and "nmae" in " ".join(errors)


def test_model_store_volume_is_valid_kubernetes() -> None:
    for doc in model_store_volume("seldon-models-jd", "seldon-test-jd"):
        assert manifests.errors_of(doc) == [], doc["kind"]


def _broken(change: str) -> dict[str, Any]:
    # the news classifier has no implementation: its container is the only way to run it
    folder = "news_classifier" if change == "container" else "linear_server"
    doc = copy.deepcopy(rendered(folder))
    predictor = doc["spec"]["predictors"][0]
    if change == "replicas":
        predictor["replicas"] = "two"
    elif change == "container":
        predictor["componentSpecs"][0]["spec"]["containers"][0]["name"] = "other"
    elif change == "name":
        doc["metadata"]["name"] = "News_Classifier"
    elif change == "uri":
        predictor["graph"]["modelUri"] = "models/x"
    elif change == "parameter":
        predictor["graph"]["parameters"][0]["type"] = "TEXT"
    elif change == "image":
        predictor["componentSpecs"][0]["spec"]["containers"][0]["image"] = "no-tag"
    elif change == "implementation":
        predictor["graph"]["implementation"] = "FOO_SERVER"
    return doc


@pytest.mark.parametrize(
    "change,word",
    [
        ("replicas", "replicas"),
        ("container", "no container of that name"),
        ("name", "metadata.name"),
        ("uri", "modelUri"),
        ("parameter", "TEXT"),
        ("image", "image"),
        ("implementation", "FOO_SERVER is not a server this workshop knows"),
    ],
)
def test_schema_refuses_what_a_cluster_would_refuse(change: str, word: str) -> None:
    errors = manifests.errors_of(_broken(change))
    assert errors and word in " ".join(errors), errors


def test_prepackaged_server_needs_a_model_uri() -> None:
    doc = rendered("sklearn_prebuilt")
    del doc["spec"]["predictors"][0]["graph"]["modelUri"]
    assert "needs a modelUri" in " ".join(manifests.errors_of(doc))


def test_refuse_invalid_names_the_file_and_the_field(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(manifests.dump(rendered("news_classifier")))
    manifests.refuse_invalid(tmp_path, "staging")  # valid: no error
    (tmp_path / "bad.yaml").write_text(manifests.dump(_broken("replicas")))
    (tmp_path / "junk.yaml").write_text("kind: [unclosed")
    with pytest.raises(GateFailed) as info:
        manifests.refuse_invalid(tmp_path, "staging")
    message = str(info.value)
    assert "bad.yaml" in message and "replicas" in message and "junk.yaml" in message
    assert "nothing was pushed" in message and "good.yaml" not in message


def test_dump_round_trips() -> None:
    doc = rendered("sklearn_prebuilt")
    assert yaml.safe_load(manifests.dump(doc)) == doc
