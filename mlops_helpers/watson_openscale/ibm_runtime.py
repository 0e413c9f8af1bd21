"""The model's own environment for the ibm backend: the scikit-learn IBM's runtime serves.

A watsonx.ai deployment unpickles the model with the scikit-learn of its software
specification: runtime-24.1-py3.11 carries 1.3, runtime-25.1-py3.12 carries 1.6 (IBM's
"Supported frameworks and software specifications" list; the double's ``PUBLISHED_RUNTIMES``).
The project's lock pins a newer scikit-learn for everything else, so the ibm backend's
``setup`` trains the data scientist's model here instead: ``.venvs/ibm-runtime``, created by
``make install`` from ``requirements/ibm-runtime.lock.txt`` (locked by ``make lock`` from
``scenarios/watson_openscale/runtime-requirements.txt``), as the Seldon runtime has its own.
The same ``model/model.py`` runs in it; only the estimator file crosses over.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlops_helpers import paths
from mlops_helpers.errors import StageError
from mlops_helpers.seldon_kind.runtime import ensure_locked_env, install_main

LOCK = "requirements/ibm-runtime.lock.txt"
TRAIN_TIMEOUT_S = 600

# run by the runtime's python: train with the model module, save, and report what it did
TRAIN = """
import importlib.util, json, sys
from pathlib import Path
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
spec = importlib.util.spec_from_file_location("watson_openscale_model", folder / "model.py")
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
config = module.load_config()
split = module.load_data(config)
model = module.train(split.X_train, split.y_train, config)
module.save(model, out)
labels, _ = module.predict(model, split.X_test)
import numpy, sklearn
print(json.dumps({
    "sklearn_version": sklearn.__version__,
    "numpy_version": numpy.__version__,
    "held_out_accuracy": float(numpy.mean(numpy.asarray(labels) == split.y_test)),
}))
"""


def runtime_dir() -> Path:
    return paths.project_root() / ".venvs" / "ibm-runtime"


def ensure_ibm_runtime(*, install: bool = False) -> Path:
    """The runtime environment's python (an error naming ``make install`` when missing)."""
    return ensure_locked_env(runtime_dir(), LOCK, "IBM model runtime", install=install)


def runtime_sklearn() -> str:
    """The scikit-learn version the lock gives the runtime environment."""
    for line in (paths.project_root() / LOCK).read_text().splitlines():
        if line.startswith("scikit-learn=="):
            return line.split("==", 1)[1].split()[0]
    raise StageError(f"{LOCK} pins no scikit-learn")


def train_for_runtime(model_folder: Path, model_path: Path) -> dict[str, Any]:
    """Train ``model_folder/model.py``'s model in the runtime environment into
    ``model_path``; what it reports: scikit-learn and numpy versions, held-out accuracy."""
    python = ensure_ibm_runtime()
    done = subprocess.run(
        [str(python), "-I", "-c", TRAIN, str(model_folder), str(model_path)],
        capture_output=True,
        text=True,
        timeout=TRAIN_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise StageError(f"training in the IBM model runtime ({python}) failed: {tail}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    """``make install``: create or refresh the runtime."""
    return install_main("IBM model runtime", ensure_ibm_runtime, LOCK, runtime_dir())


if __name__ == "__main__":
    sys.exit(main())
