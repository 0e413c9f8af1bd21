"""Build: the serving app plus one exact model version, tagged by a content digest.

This is what ``build-container-image`` makes on the cluster (a container image); locally it
is a directory with the same three parts the Dockerfile copies: ``app/``, ``model/`` and
``manifest.json``. The digest covers app and model files, so the same inputs give the same
tag and any change gives a new one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

IGNORED = ("__pycache__", ".pyc")


def content_digest(*roots: Path) -> str:
    """sha256 over every file's relative path and bytes, in a stable order."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root.parent).as_posix()
            if any(part in rel for part in IGNORED):
                continue
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def make_bundle(
    app_src: Path, model_src: Path, builds_dir: Path, model_name: str, version: str
) -> dict[str, Any]:
    """Assemble (or find) the bundle of ``model_name`` version ``version``."""
    staging = builds_dir / f".tmp-{model_name}-v{version}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(app_src, staging / "app", ignore=shutil.ignore_patterns(*IGNORED))
    shutil.copytree(model_src, staging / "model")
    digest = content_digest(staging / "app", staging / "model")
    tag = f"v{version}-{digest[:12]}"
    final = builds_dir / f"{model_name}-{tag}"
    if final.is_dir():  # same inputs, same tag: reuse the earlier build
        shutil.rmtree(staging)
    else:
        manifest = {
            "model_name": model_name,
            "model_version": str(version),
            "tag": tag,
            "digest": f"sha256:{digest}",
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        staging.rename(final)
    return {
        "path": str(final),
        "tag": tag,
        "digest": f"sha256:{digest}",
        "model_version": str(version),
        "model_name": model_name,
    }
