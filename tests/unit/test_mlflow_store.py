"""A new MLflow store made from the kept empty one is a store MLflow accepts as its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlops_helpers import mlflow_store, paths


@pytest.fixture
def build_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "build_dir", lambda: tmp_path / "build")
    return tmp_path / "build"


def new_client(db: Path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{db}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_a_seeded_store_opens_with_its_own_default_experiment(
    build_dir: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first" / "mlflow.db"
    assert not mlflow_store.seed_store(first)  # no template yet: MLflow makes the store
    new_client(first).search_experiments()
    mlflow_store.save_template(first)
    template = mlflow_store.template_path()
    assert template is not None and template.is_file() and template.parent.parent == build_dir
    with sqlite3.connect(template) as db:  # the first store's Default experiment is not kept
        assert db.execute("SELECT count(*) FROM experiments").fetchone() == (0,)

    second = tmp_path / "second" / "mlflow.db"
    assert mlflow_store.seed_store(second)
    client = new_client(second)
    default = client.get_experiment("0")
    assert default.name == "Default" and "first" not in default.artifact_location
    made = client.create_experiment("demo")
    assert client.get_experiment(made).name == "demo"
    assert not mlflow_store.seed_store(second)  # an existing store is never replaced
