"""The model folders' own work, run with the Seldon environment's python: unit tests,
training, and packaging each folder as an image (locally: a staged folder with a content tag).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlops_helpers.errors import StageError
from mlops_helpers.seldon_kind.catalog import Deployment, ModelFolder

# not part of an image: the folder's tests and caches
_SKIP = {"tests", "__pycache__", ".pytest_cache", "pytest.ini"}
IMAGE_REGISTRY = "seldon-workshop"
_SUMMARY = re.compile(r"\d+ (passed|failed|errors?)\b.* in [\d.]+s")
TEST_TIMEOUT_S = 300
#: runs the folders' tests in the Seldon env (see its docstring)
FOLDER_TESTS = Path(__file__).resolve().parent / "folder_tests.py"
TRAIN_TIMEOUT_S = 300


def _files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not (_SKIP & set(rel.parts)) and path.suffix != ".pyc":
            yield path


def digest(root: Path) -> str:
    """sha256 over relative names and contents: the same files give the same tag."""
    sha = hashlib.sha256()
    for path in _files(root):
        sha.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


def child_env(**extra: str) -> dict[str, str]:
    """The workshop's environment minus its python paths: the Seldon env has its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


def _run(argv: list[str], cwd: Path, log: Path, timeout: float) -> tuple[int | None, float]:
    # a fixed hash seed: pickled sets come out in the same order, so the same training
    # gives byte-identical artifacts (and the same version)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log, "wb") as out:
        try:
            done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=child_env(PYTHONHASHSEED="0"),
                                  timeout=timeout,
                                  check=False)
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    return code, round(time.monotonic() - start, 2)


def unit_test(python: Path, folder: Path, log_dir: Path) -> dict[str, Any]:
    """The folder's own tests (its pytest.ini makes it the rootdir), in the Seldon env."""
    return _folder_tests(python, [folder], log_dir)[folder.name]


def unit_test_all(python: Path, models_dir: Path, names: Iterable[str],
                  log_dir: Path) -> dict[str, dict[str, Any]]:
    """Every folder's tests at once: one pytest process per folder, forked side by side from
    one runner that imported their shared libraries once (``folder_tests.py``)."""
    folders = [models_dir / n for n in names]
    missing = [str(f) for f in folders if not (f / "tests").is_dir()]
    if missing:
        raise StageError(f"model folder(s) without tests: {', '.join(missing)}")
    return _folder_tests(python, folders, log_dir)


def _folder_tests(python: Path, folders: list[Path], log_dir: Path) -> dict[str, dict[str, Any]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(python), "-P", str(FOLDER_TESTS), str(log_dir.resolve()), str(TEST_TIMEOUT_S),
            *(str(f.resolve()) for f in folders)]
    try:
        # a fixed hash seed, as for training: the tests train too
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env=child_env(PYTHONHASHSEED="0"), timeout=TEST_TIMEOUT_S + 60,
                              check=False)
        outcome: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        outcome = {}
    except (ValueError, IndexError):
        raise StageError(f"the unit-test runner crashed (exit {done.returncode}):\n"
                         f"{done.stderr[-1500:]}") from None
    results = {}
    for folder in folders:
        entry = outcome.get(folder.name) or {"code": None, "seconds": TEST_TIMEOUT_S}
        log = log_dir / f"unit-{folder.name}.log"
        lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
        # pytest's closing line ("1 failed, 6 passed in 1.2s"), not a warning printed after it
        counts = [line for line in lines if _SUMMARY.search(line)]
        summary = counts[-1] if counts else (lines[-1] if lines else "(no output)")
        if entry["code"] is None:
            summary = f"did not finish within {TEST_TIMEOUT_S}s"
        results[folder.name] = {"folder": folder.name, "passed": entry["code"] == 0,
                                "summary": summary.strip("= "), "seconds": entry["seconds"],
                                "log": str(log), "source": digest(folder)}
    return results


def train(python: Path, models_dir: Path, deployment: Deployment, store: Path,
          fill: dict[str, str], log_dir: Path) -> dict[str, Any]:
    """Run the folder's train.py into a scratch folder, then file it under its digest.

    The version is the artifact's content digest, so retraining the same data with the same
    settings gives the same version (and no new GitOps commit).
    """
    folder = models_dir / deployment.folder
    # training is deterministic: the same inputs give the same artifact, so an artifact
    # trained from these exact inputs before is that version (a retrain of one model does
    # not train the other three again)
    inputs = training_inputs(python, folder, deployment, fill)
    known = store / ".trained" / f"{deployment.name}-{inputs}"
    if known.is_file() and (store / deployment.name / known.read_text().strip()).is_dir():
        return _trained(deployment, store, known.read_text().strip(), 0.0, reused=True)
    scratch = store / ".incoming" / deployment.name
    shutil.rmtree(scratch, ignore_errors=True)
    args = [a.format(out=str(scratch), **fill) for a in deployment.train_args]
    log = log_dir / f"train-{deployment.name}.log"
    code, seconds = _run([str(python), "train.py", *args], folder, log, TRAIN_TIMEOUT_S)
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StageError(f"training {deployment.name} failed (exit {code}); {log}:\n{tail}")
    version = digest(scratch)[:12]
    target = store / deployment.name / version
    if target.exists():
        shutil.rmtree(scratch)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch.rename(target)
    known.parent.mkdir(parents=True, exist_ok=True)
    known.write_text(version)
    return _trained(deployment, store, version, seconds, reused=False)


def training_inputs(python: Path, folder: Path, deployment: Deployment,
                    fill: dict[str, str]) -> str:
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


def _trained(deployment: Deployment, store: Path, version: str, seconds: float, *,
             reused: bool) -> dict[str, Any]:
    target = store / deployment.name / version
    meta = json.loads((target / "meta.json").read_text())
    return {"deployment": deployment.name, "version": version, "path": str(target),
            "seconds": seconds, "reused": reused, "meta": meta}


def build_image(models_dir: Path, folder: ModelFolder, images_dir: Path,
                embedded: Path | None = None) -> dict[str, Any]:
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
    return {"folder": folder.name, "image": folder.image, "tag": tag,
            "ref": f"{IMAGE_REGISTRY}/{folder.image}:{tag}", "path": str(target)}


def model_class(image_dir: Path) -> str:
    """MODEL_NAME from the image's s2i environment (what the Seldon wrapper imports)."""
    env_file = image_dir / ".s2i" / "environment"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "MODEL_NAME" and value.strip():
                return value.strip()
    raise StageError(f"{image_dir} has no MODEL_NAME in .s2i/environment")
