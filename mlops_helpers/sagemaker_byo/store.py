"""A local artifact store laid out like the S3 bucket: ``<root>/<bucket>/<key>``."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path
from typing import IO

from mlops_helpers.errors import StageError

DATA_PREFIX = "data"
JOBS_PREFIX = "training-jobs"
MODEL_FILE = "model.joblib"  # what the container's train writes and serve loads


def model_digest(tar_file: IO[bytes]) -> str:
    """sha256 of ``model.joblib`` inside a ``model.tar.gz``: the model's identity, the same
    value the container's ``serve`` reports on ``/ping`` and in every answer."""
    with tarfile.open(fileobj=tar_file, mode="r:gz") as tar:
        try:
            member = tar.extractfile(MODEL_FILE)
        except KeyError:
            member = None
        if member is None:
            raise StageError(f"the model artifact holds no {MODEL_FILE}")
        h = hashlib.sha256()
        for block in iter(lambda: member.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_key(job_name: str) -> str:
    """Where SageMaker puts a job's model: ``<output path>/<job>/output/model.tar.gz``."""
    return f"{JOBS_PREFIX}/{job_name}/output/model.tar.gz"


class LocalArtifactStore:
    def __init__(self, root: Path, bucket: str) -> None:
        self.bucket = bucket
        self.base = Path(root) / bucket

    def uri(self, key: str) -> str:
        return f"local-s3://{self.bucket}/{key}"

    def path(self, uri_or_key: str) -> Path:
        prefix = f"local-s3://{self.bucket}/"
        key = uri_or_key[len(prefix) :] if uri_or_key.startswith(prefix) else uri_or_key
        if key.startswith(("local-s3://", "s3://")):
            raise StageError(f"{uri_or_key} is not in the local bucket {self.bucket}")
        return self.base / key

    def put_file(self, source: Path, key: str) -> str:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return self.uri(key)

    def put_model(self, model_dir: Path, key: str) -> str:
        """Package a model folder as SageMaker does: the folder's files in ``model.tar.gz``."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(target, "w:gz") as tar:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=path.name)
        return self.uri(key)

    def model_digest(self, uri: str) -> str:
        source = self.path(uri)
        if not source.is_file():
            raise StageError(f"model artifact {uri} is not in the store ({source})")
        with open(source, "rb") as handle:
            return model_digest(handle)

    def extract_model(self, uri: str, target: Path) -> Path:
        source = self.path(uri)
        if not source.is_file():
            raise StageError(f"model artifact {uri} is not in the store ({source})")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(source, "r:gz") as tar:
            tar.extractall(target, filter="data")
        return target
