"""Each model folder's own tests pass in the Seldon environment, and a broken one fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_helpers.paths import scenarios_dir
from mlops_helpers.seldon_kind.catalog import FOLDERS
from mlops_helpers.seldon_kind.modelwork import build_image, digest, model_class, unit_test

MODELS = scenarios_dir() / "seldon_kind" / "models"


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_folder_tests_pass(name: str, seldon_python: Path, tmp_path: Path) -> None:
    result = unit_test(seldon_python, MODELS / name, tmp_path)
    assert result["passed"], Path(result["log"]).read_text()
    assert "passed" in result["summary"] and "failed" not in result["summary"]


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_folder_has_what_a_model_repo_needs(name: str) -> None:
    folder = MODELS / name
    for needed in ("Dockerfile", "requirements.txt", "seldondeployment.yaml", "train.py",
                   ".s2i/environment", "pytest.ini", f"{FOLDERS[name].server_class}.py"):
        assert (folder / needed).is_file(), f"{name} lacks {needed}"
    assert model_class(folder) == FOLDERS[name].server_class
    assert "seldon-core==1.18.2" in (folder / "requirements.txt").read_text()


def test_a_failing_test_is_reported(seldon_python: Path, tmp_path: Path) -> None:
    copy = tmp_path / "linear_server"
    shutil.copytree(MODELS / "linear_server", copy)
    (copy / "tests" / "test_broken.py").write_text("def test_broken():\n    assert 1 == 2\n")
    result = unit_test(seldon_python, copy, tmp_path)
    assert not result["passed"]
    assert "1 failed" in result["summary"]


def test_image_tag_follows_content_and_skips_tests(tmp_path: Path) -> None:
    first = build_image(MODELS, FOLDERS["linear_server"], tmp_path)
    again = build_image(MODELS, FOLDERS["linear_server"], tmp_path)
    assert first == again
    staged = Path(first["path"])
    assert (staged / "LinearServer.py").is_file() and not (staged / "tests").exists()
    assert first["tag"] == digest(staged)[:12]
    assert first["ref"] == f"seldon-workshop/linear-server:{first['tag']}"
