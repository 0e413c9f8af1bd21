"""The local model repository: MLflow tracking and registry on SQLite in the run directory.

In-process (``sqlite:///`` URI), not ``mlflow server``: every CLI stage and the notebook
open the same file directly, which saves the server's ~5 s start and its HTTP hops (the
notebook has a 30 s budget). A deployment space is an MLflow experiment tagged with the
space's name; its experiment name carries the space id, so two spaces of the same name can
exist, as in the write-up, and ``ensure_space`` finds and removes the extras.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from mlops_helpers import mlflow_store
from mlops_helpers.extras import require
from mlops_helpers.resources import teardown_handler

MODULE = "mlops_helpers.watson_openscale.mlflow_repo"
SPACE_TAG = "wos.space_name"
DIGEST_TAG = "wos.digest"


def tracking_uri(run_dir: Path) -> str:
    return f"sqlite:///{Path(run_dir) / 'mlflow' / 'mlflow.db'}"


def client(uri: str) -> Any:
    require("mlflow", "mlflow")
    # quiet: no progress bars for local copies, no "creating tables" lines in notebooks
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    fresh = not mlflow_store.seed_store(db) and not db.exists()
    made = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if fresh:
        mlflow_store.save_template(db)
    return made


def digest(folder: Path) -> str:
    """Content digest of a model folder: the same model bytes give the same digest."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class MlflowRepository:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.uri = tracking_uri(run_dir)
        self.client = client(self.uri)
        self.artifacts = self.run_dir / "mlflow" / "artifacts"

    # -- spaces ---------------------------------------------------------------------------
    def spaces(self, name: str) -> list[Any]:
        """Active spaces (experiments) with this name, oldest first."""
        found = self.client.search_experiments(filter_string=f"tags.`{SPACE_TAG}` = '{name}'")
        return sorted(found, key=lambda e: (e.creation_time, int(e.experiment_id)))

    def create_space(self, name: str) -> str:
        space_id = uuid.uuid4().hex[:12]
        return str(
            self.client.create_experiment(
                f"{name}~{space_id}",
                artifact_location=(self.artifacts / space_id).as_uri(),
                tags={SPACE_TAG: name, "wos.space_id": space_id},
            )
        )

    def delete_space(self, experiment_id: str) -> None:
        self.client.delete_experiment(experiment_id)

    # -- models ---------------------------------------------------------------------------
    def ensure_registered_model(self, name: str, space_id: str) -> bool:
        """True when the registered model had to be created."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
            return False
        except MlflowException:
            self.client.create_registered_model(name, tags={"wos.space_id": space_id})
            return True

    def version_with_digest(self, name: str, content: str) -> Any | None:
        found = self.client.search_model_versions(
            f"name = '{name}' and tags.`{DIGEST_TAG}` = '{content}'"
        )
        return found[0] if found else None

    def versions(self, name: str) -> list[Any]:
        return sorted(
            self.client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version)
        )

    def add_version(
        self, name: str, space_id: str, model_dir: Path, params: dict[str, Any], content: str
    ) -> Any:
        """A run in the space logs the model as an MLflow model (scikit-learn flavor, with a
        signature and an input example); that becomes a new version."""
        import tempfile

        run = self.client.create_run(space_id, tags={"wos.model": name})
        run_id = run.info.run_id
        for key, value in params.items():
            self.client.log_param(run_id, key, value)
        with tempfile.TemporaryDirectory(prefix="wos-model-") as tmp:
            packaged = as_mlflow_model(model_dir, Path(tmp) / "model")
            self.client.log_artifacts(run_id, str(packaged), "model")
        self.client.set_terminated(run_id)
        return self.client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags={DIGEST_TAG: content}
        )

    def download(self, name: str, version: str, target: Path) -> Path:
        """The version's artifacts (what its run logged under ``model``) into ``target``."""
        found = self.client.get_model_version(name, version)
        target.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(found.run_id, "model", str(target)))

    def delete_model(self, name: str) -> list[str]:
        """Every version, then the registered model; the deleted version numbers."""
        from mlflow.exceptions import MlflowException

        deleted = []
        for version in self.versions(name):
            self.client.delete_model_version(name, version.version)
            deleted.append(str(version.version))
        try:
            self.client.delete_registered_model(name)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" not in str(exc.error_code):
                raise
        return deleted


def as_mlflow_model(model_dir: Path, target: Path) -> Path:
    """``model.joblib`` + ``model-meta.json`` + ``input_example.json`` of a model folder as an
    MLflow model folder, loadable by ``mlflow.pyfunc`` and ``mlflow.sklearn``."""
    import json
    import shutil
    import warnings

    import joblib
    import numpy as np
    import sklearn
    from mlflow.models import infer_signature
    from mlflow.sklearn import save_model

    estimator = joblib.load(model_dir / "model.joblib")
    example = np.asarray(
        json.loads((model_dir / "input_example.json").read_text())["data"], dtype=float
    )
    with warnings.catch_warnings():
        # MLflow's own note about its internal wrapper's type hints: nothing to act on here
        warnings.filterwarnings("ignore", message=".*type hint is inferred as AnyType")
        save_model(
            estimator,
            str(target),
            signature=infer_signature(example, estimator.predict(example)),
            input_example=example,
            # named, not inferred: inference imports the model in a subprocess
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"],
        )
    shutil.copy(model_dir / "model-meta.json", target / "model-meta.json")
    return target


@teardown_handler("mlflow_space")
def _teardown_space(params: dict[str, Any]) -> None:
    from mlflow.exceptions import MlflowException

    repo = MlflowRepository(Path(params["run_dir"]))
    try:
        repo.delete_space(params["experiment_id"])
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" not in str(exc.error_code):
            raise


@teardown_handler("mlflow_model")
def _teardown_model(params: dict[str, Any]) -> None:
    MlflowRepository(Path(params["run_dir"])).delete_model(params["name"])
