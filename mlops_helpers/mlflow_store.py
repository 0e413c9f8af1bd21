"""New MLflow SQLite stores start from a copy of an empty one, not from MLflow's migrations.

A new store runs MLflow's ~50 schema migrations, each a committed transaction: about 1.3 s of
CPU, and several seconds on a busy machine, in every fresh run directory (each test, each
attendee, the continuous_x tracking server's start). The first store the watson_openscale
stages make in a checkout is kept, empty, per MLflow version under build/cache/; later new
stores (that scenario's and the tracking server's) start as a copy of it, and MLflow checks on
opening that it is at its schema head, so nothing is skipped but the waiting.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mlops_helpers import paths


def template_path() -> Path | None:
    """Where this MLflow version's empty store is kept; None without MLflow."""
    try:
        mlflow_version = version("mlflow")
    except PackageNotFoundError:
        return None
    return paths.build_dir() / "cache" / f"mlflow-{mlflow_version}-empty.db"


def seed_store(db: Path) -> bool:
    """Start a store that does not exist yet as a copy of the template; True if it did."""
    template = template_path()
    if db.exists() or template is None or not template.is_file():
        return False
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, db)
    return True


def save_template(db: Path) -> None:
    """Keep a just-created, still empty store as the template (if there is none yet).

    Its Default experiment is left out: MLflow records that experiment's artifact location,
    which belongs to the store that made it; every store made from the copy creates its own."""
    template = template_path()
    if template is None or template.is_file() or not db.is_file():
        return
    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=template.parent, suffix=".db", delete=False) as tmp:
        partial = Path(tmp.name)
    source, target = sqlite3.connect(db), sqlite3.connect(partial)
    try:
        source.backup(target)  # a consistent snapshot, whatever connections stay open
        with target:
            target.execute("DELETE FROM experiment_tags")
            target.execute("DELETE FROM experiments")
    finally:
        source.close()
        target.close()
    os.chmod(partial, 0o644)
    os.replace(partial, template)  # atomic: parallel runs never see half a file
