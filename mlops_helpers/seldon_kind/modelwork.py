"""The model folders' own work, run with the Seldon environment's python: unit tests,
training, and packaging each folder as an image (locally: a staged folder with a content tag).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError
from mlops_helpers.launcher_client import start_method
from mlops_helpers.seldon_kind.catalog import Deployment, ModelFolder

# not part of an image: the folder's tests and caches
_SKIP = {"tests", "__pycache__", ".pytest_cache", "pytest.ini"}
IMAGE_REGISTRY = "seldon-workshop"
_SUMMARY = re.compile(r"\d+ (passed|failed|errors?)\b.* in [\d.]+s")
TEST_TIMEOUT_S = 300
#: runs the folders' tests, or their train.py, in the Seldon env (see its docstring)
FOLDER_RUNNER = Path(__file__).resolve().parent / "folder_runner.py"
TRAIN_TIMEOUT_S = 300
#: imported once by the runner before it forks a folder's train.py
TRAIN_PRELOAD = (
    "numpy",
    "joblib",
    "sklearn.datasets",
    "sklearn.linear_model",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.feature_extraction.text",
    "sklearn.metrics",
)
#: ... and before it forks a folder's tests: training's imports and what the tests add
TEST_PRELOAD = ("pytest", *TRAIN_PRELOAD, "flask", "seldon_core.flask_utils")


def _files(root: Path, skip: frozenset[str] | set[str] = _SKIP) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not (skip & set(rel.parts)) and path.suffix != ".pyc":
            yield path


def digest(root: Path, skip: frozenset[str] | set[str] = _SKIP) -> str:
    """sha256 over relative names and contents: the same files give the same tag."""
    sha = hashlib.sha256()
    for path in _files(root, skip):
        sha.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


# what the unit tests read: the whole folder, tests/ and pytest.ini included (caches aside)
_NOT_TESTED = frozenset({"__pycache__", ".pytest_cache"})


def tested_digest(root: Path) -> str:
    """The digest a unit-test verdict is recorded under: every file the tests read."""
    return digest(root, _NOT_TESTED)


def child_env(**extra: str) -> dict[str, str]:
    """The workshop's environment minus its python paths: the Seldon env has its own."""
    from mlops_helpers.servers import server_env  # no cloud secrets in a model's process

    env = {k: v for k, v in server_env().items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


def run_folder_jobs(
    python: Path, jobs: list[dict[str, Any]], preload: Iterable[str], job_file: Path, timeout: float
) -> dict[str, dict[str, Any]]:
    """``folder_runner.py``: each job (a folder's tests or a script in it) in its own process,
    forked side by side from one runner that imported ``preload`` once (or spawned, where
    servers spawn: ``launcher_client.start_method``). Job name ->
    {"code": exit code, None if it timed out, "seconds"}."""
    job_file.parent.mkdir(parents=True, exist_ok=True)
    spec = {"timeout": timeout, "preload": list(preload), "start": start_method(), "jobs": jobs}
    job_file.write_text(json.dumps(spec, indent=2))
    argv = [str(python), "-P", str(FOLDER_RUNNER), str(job_file)]
    try:
        # a fixed hash seed: pickled sets come out in the same order, so the same training
        # gives byte-identical artifacts (and the same version); the tests train too
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=child_env(PYTHONHASHSEED="0"),
            timeout=timeout + 60,
            check=False,
        )
        outcome: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        outcome = {}
    except (ValueError, IndexError):
        raise StageError(
            f"the model-folder runner crashed (exit {done.returncode}):\n{done.stderr[-1500:]}"
        ) from None
    return {
        job["name"]: outcome.get(job["name"]) or {"code": None, "seconds": timeout} for job in jobs
    }


def unit_test_all(
    python: Path, models_dir: Path, names: Iterable[str], log_dir: Path
) -> dict[str, dict[str, Any]]:
    """Every folder's tests at once: one pytest process per folder, forked side by side from
    one runner that imported their shared libraries once (``folder_runner.py``)."""
    folders = [models_dir / n for n in names]
    missing = [str(f) for f in folders if not (f / "tests").is_dir()]
    if missing:
        raise StageError(f"model folder(s) without tests: {', '.join(missing)}")
    return unit_test_folders(python, folders, log_dir)


def unit_test_folders(
    python: Path, folders: list[Path], log_dir: Path
) -> dict[str, dict[str, Any]]:
    """The tests of ``folders`` (each its own pytest process: its ``pytest.ini`` makes it the
    rootdir), side by side: folder name -> passed, pytest's summary, its log, its digest."""
    log_dir = log_dir.resolve()
    jobs = [
        {
            "name": f.name,
            "cwd": str(f.resolve()),
            "log": str(log_dir / f"unit-{f.name}.log"),
            # a private --basetemp keeps concurrent sessions from pruning each other's
            # temporary folders
            "pytest": ["-q", "--color=no", f"--basetemp={log_dir / f'pytest-{f.name}'}"],
        }
        for f in folders
    ]
    outcome = run_folder_jobs(
        python, jobs, TEST_PRELOAD, log_dir / "unit-tests.jobs.json", TEST_TIMEOUT_S
    )
    results = {}
    for folder in folders:
        entry = outcome[folder.name]
        log = log_dir / f"unit-{folder.name}.log"
        lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
        # pytest's closing line ("1 failed, 6 passed in 1.2s"), not a warning printed after it
        counts = [line for line in lines if _SUMMARY.search(line)]
        summary = counts[-1] if counts else (lines[-1] if lines else "(no output)")
        if entry["code"] is None:
            summary = f"did not finish within {TEST_TIMEOUT_S}s"
        results[folder.name] = {
            "folder": folder.name,
            "passed": entry["code"] == 0,
            "summary": summary.strip("= "),
            "seconds": entry["seconds"],
            "log": str(log),
            "source": tested_digest(folder),
        }
    return results


def train_all(
    python: Path,
    models_dir: Path,
    deployments: Iterable[Deployment],
    store: Path,
    fill: dict[str, str],
    log_dir: Path,
) -> list[dict[str, Any]]:
    """Run each deployment's ``train.py`` into a scratch folder, then file it under its digest;
    the trainings run side by side, forked from one runner that imported scikit-learn once.

    The version is the artifact's content digest, so retraining the same data with the same
    settings gives the same version (and no new GitOps commit).
    """
    deployments = list(deployments)
    log_dir = log_dir.resolve()
    versions: dict[str, tuple[str, float, bool]] = {}
    jobs = []
    for deployment in deployments:
        # training is deterministic: the same inputs give the same artifact, so an artifact
        # trained from these exact inputs before is that version (a retrain of one model does
        # not train the other three again)
        known = _known(python, models_dir, deployment, store, fill)
        if known.is_file() and (store / deployment.name / known.read_text().strip()).is_dir():
            versions[deployment.name] = (known.read_text().strip(), 0.0, True)
            continue
        scratch = (store / ".incoming" / deployment.name).resolve()
        shutil.rmtree(scratch, ignore_errors=True)
        jobs.append(
            {
                "name": deployment.name,
                "cwd": str((models_dir / deployment.folder).resolve()),
                "log": str(log_dir / f"train-{deployment.name}.log"),
                "argv": [
                    "train.py",
                    *(a.format(out=str(scratch), **fill) for a in deployment.train_args),
                ],
            }
        )
    outcome = (
        run_folder_jobs(python, jobs, TRAIN_PRELOAD, log_dir / "train.jobs.json", TRAIN_TIMEOUT_S)
        if jobs
        else {}
    )
    failed = [(name, entry) for name, entry in outcome.items() if entry["code"] != 0]
    if failed:
        reasons = []
        for name, entry in failed:
            log = log_dir / f"train-{name}.log"
            tail = (
                "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                if log.is_file()
                else "(no log)"
            )
            reasons.append(f"training {name} failed (exit {entry['code']}); {log}:\n{tail}")
        raise StageError("\n".join(reasons))
    for deployment in deployments:
        if deployment.name in outcome:
            version = _file_artifact(store, deployment.name)
            _known(python, models_dir, deployment, store, fill).write_text(version)
            versions[deployment.name] = (version, outcome[deployment.name]["seconds"], False)
    return [
        _trained(d, store, *versions[d.name][:2], reused=versions[d.name][2]) for d in deployments
    ]


def _known(
    python: Path, models_dir: Path, deployment: Deployment, store: Path, fill: dict[str, str]
) -> Path:
    """Where the version trained from these exact inputs is recorded."""
    inputs = training_inputs(python, models_dir / deployment.folder, deployment, fill)
    known = store / ".trained" / f"{deployment.name}-{inputs}"
    known.parent.mkdir(parents=True, exist_ok=True)
    return known


def _file_artifact(store: Path, name: str) -> str:
    """Move the scratch artifact of ``name`` under its content digest; returns the version."""
    scratch = store / ".incoming" / name
    version = digest(scratch)[:12]
    target = store / name / version
    if target.exists():
        shutil.rmtree(scratch)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch.rename(target)
    return version


def training_inputs(
    python: Path, folder: Path, deployment: Deployment, fill: dict[str, str]
) -> str:
    """A digest of everything a training reads: the folder, its arguments, the files they
    name (the corpus) and the Seldon environment (its lock stamp)."""
    sha = hashlib.sha256(digest(folder).encode())
    for arg in deployment.train_args:
        value = arg.format(out="{out}", **fill)
        sha.update(b"\0" + value.encode())
        if Path(value).is_file():
            sha.update(hashlib.sha256(Path(value).read_bytes()).digest())
    stamp = python.parent.parent / ".requirements.sha256"
    sha.update(str(python).encode() + (stamp.read_bytes() if stamp.is_file() else b""))
    return sha.hexdigest()[:16]


def _trained(
    deployment: Deployment, store: Path, version: str, seconds: float, *, reused: bool
) -> dict[str, Any]:
    target = store / deployment.name / version
    meta = json.loads((target / "meta.json").read_text())
    return {
        "deployment": deployment.name,
        "version": version,
        "path": str(target),
        "seconds": seconds,
        "reused": reused,
        "meta": meta,
    }


def build_image(
    models_dir: Path, folder: ModelFolder, images_dir: Path, embedded: Path | None = None
) -> dict[str, Any]:
    """Stage what the Dockerfile copies (plus an embedded model) under a content tag."""
    source = models_dir / folder.name
    scratch = images_dir / ".incoming" / folder.image
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for path in _files(source):
        target = scratch / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    if embedded is not None:
        for name in ("model.joblib", "meta.json"):
            shutil.copy2(embedded / name, scratch / name)
    tag = digest(scratch)[:12]
    target = images_dir / f"{folder.image}-{tag}"
    if target.exists():
        shutil.rmtree(scratch)
    else:
        scratch.rename(target)
    return {
        "folder": folder.name,
        "image": folder.image,
        "tag": tag,
        "ref": f"{IMAGE_REGISTRY}/{folder.image}:{tag}",
        "path": str(target),
    }


def model_class(image_dir: Path) -> str:
    """MODEL_NAME from the image's s2i environment (what the Seldon wrapper imports)."""
    env_file = image_dir / ".s2i" / "environment"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "MODEL_NAME" and value.strip():
                return value.strip()
    raise StageError(f"{image_dir} has no MODEL_NAME in .s2i/environment")
