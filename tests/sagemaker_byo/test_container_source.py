"""The build stage's checks of the container source and its content digest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_helpers.errors import StageError
from mlops_helpers.sagemaker_byo import container


@pytest.fixture
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "container"
    shutil.copytree(container.container_dir(), copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_real_container_source_is_ready() -> None:
    assert container.check(container.container_dir()) == []


def test_digest_follows_the_content(source: Path) -> None:
    before = container.digest(source)
    assert container.digest(source) == before
    (source / "program" / "__pycache__").mkdir()
    (source / "program" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert container.digest(source) == before, "caches are not part of the image"
    (source / "program" / "app.py").write_text((source / "program" / "app.py").read_text()
                                               + "\n# changed\n")
    assert container.digest(source) != before


def test_problems_are_named(source: Path) -> None:
    (source / "program" / "serve").chmod(0o644)
    (source / "program" / "app.py").write_text("def broken(:\n")
    (source / "Dockerfile").unlink()
    problems = container.check(source)
    assert "missing Dockerfile" in problems
    assert any("serve is not executable" in p for p in problems)
    assert any("app.py does not compile: line 1" in p for p in problems)
    with pytest.raises(StageError, match="is not ready"):
        container.stage_image(source, source.parent / "staged")
    assert not (source.parent / "staged").exists()
