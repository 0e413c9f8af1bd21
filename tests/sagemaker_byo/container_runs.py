"""What the container tests and the fault tests both need: /opt/ml trees, the iris rows,
the image's interpreter (``image_site``: its own packages only), a SageMaker-style job and a
``serve`` of its model."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from mlops_helpers.data import load_dataset
from mlops_helpers.resources import ResourceTracker
from mlops_helpers.sagemaker_byo import image_site
from mlops_helpers.sagemaker_byo.container import container_dir
from mlops_helpers.servers import ManagedServer, start_server
from tests.support import leftover_processes

PROGRAM = container_dir() / "program"
# a job's hyperparameters as SageMaker hands them over: ours, some JSON-quoted, plus what
# tuning and the SageMaker SDK add (which train must skip)
SAGEMAKER_HYPERPARAMETERS = {
    "max_depth": "3",
    "criterion": '"entropy"',
    "_tuning_objective_metric": "validation:accuracy",
    "sagemaker_program": '"train"',
    "sagemaker_region": '"eu-west-2"',
    "sagemaker_job_name": '"byo-train-jd-1"',
    "sagemaker_container_log_level": "20",
}


def make_tree(
    base: Path,
    hyperparameters: dict[str, str],
    rows: np.ndarray | None,
    channel: str = "training",
    extra: dict[str, np.ndarray] | None = None,
    content_type: str = "text/csv",
) -> Path:
    """An /opt/ml tree as SageMaker lays it out, channels named in inputdataconfig.json."""
    channels = {channel: rows, **(extra or {})}
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (base / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps(
            {
                name: {
                    "ContentType": content_type,
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for name in channels
            }
        )
    )
    for name, data in channels.items():
        (base / "input" / "data" / name).mkdir(parents=True)
        if data is not None:
            np.savetxt(base / "input" / "data" / name / f"{name}.csv", data, delimiter=",")
    return base


def iris_rows(split: str = "train") -> np.ndarray:
    data = load_dataset("iris")
    X, y = (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)
    return np.column_stack([y, X])


Image = tuple[list[str], dict[str, str]]  # the interpreter command and its environment
Train = Callable[[Path], "subprocess.CompletedProcess[str]"]


def image_python(root: Path) -> Image:
    """How the image's programs run here (``image_site``), its packages linked under root."""
    site = image_site.link_site(container_dir() / "requirements.txt", root / image_site.SITE_DIR)
    return image_site.python(site)


def trainer(image: Image) -> Train:
    """``train`` run on an /opt/ml tree, as the image runs it."""
    python, site_env = image

    def run_train(base: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*python, str(PROGRAM / "train")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={"BYO_OPT_ML": str(base), "PATH": "/usr/bin:/bin", **site_env},
        )

    return run_train


class Job:
    """A finished training job: its /opt/ml tree and what ``train`` printed."""

    def __init__(self, base: Path, done: subprocess.CompletedProcess[str]) -> None:
        self.base, self.stdout = base, done.stdout
        self.meta = json.loads((base / "model" / "model-meta.json").read_text())


def sagemaker_job(root: Path, image: Image) -> Job:
    """``train`` on SageMaker-style hyperparameters, a ``train`` and a ``validation`` channel."""
    base = make_tree(
        root,
        SAGEMAKER_HYPERPARAMETERS,
        iris_rows(),
        channel="train",
        extra={"validation": iris_rows("test")},
    )
    done = trainer(image)(base)
    assert done.returncode == 0, done.stderr
    return Job(base, done)


def serve(
    name: str, job: Job, image: Image, run_dir: Path, env: dict[str, str] | None = None
) -> Iterator[ManagedServer]:
    """``serve`` (two workers) of the job's model; stopped afterwards, nothing left."""
    python, site_env = image
    tracker = ResourceTracker(run_dir)
    server = start_server(
        name,
        [
            *python,
            str(PROGRAM / "serve"),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            "2",
        ],
        run_dir=run_dir,
        tracker=tracker,
        health_path="/ping",
        env={"BYO_OPT_ML": str(job.base), **site_env, **(env or {})},
    )
    yield server
    tracker.cleanup(log=lambda _: None)
    assert leftover_processes(str(job.base)) == []
