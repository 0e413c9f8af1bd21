from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.jenkins_runner import BuildResult, make_origin, run_jenkinsfile


@pytest.fixture
def run_text(tmp_path: Path) -> Callable[..., BuildResult]:
    """Run a small Jenkinsfile from a fresh one-file repository (plus ``files``)."""
    count = itertools.count(1)

    def run(text: str, files: dict[str, str] | None = None, **kwargs: Any) -> BuildResult:
        root = tmp_path / f"build{next(count)}"
        source = root / "src"
        source.mkdir(parents=True)
        (source / "Jenkinsfile").write_text(text)
        for name, content in (files or {}).items():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_text(content)
        origin = make_origin(source, root / "origin.git")
        return run_jenkinsfile(origin, root / "ws", timeout=60, **kwargs)

    return run
