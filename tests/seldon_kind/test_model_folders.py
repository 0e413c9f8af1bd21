"""Each model folder's own tests pass in the Seldon environment (a broken one fails: see
``test_gates.test_a_failing_unit_test_stops_everything``).

The folders' tests are the unit_tests stage of the full run this file shares with the faults
and pipeline files (``tests/fixtures/seldon_kind.py``): each test reads its folder's result there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.paths import scenarios_dir
from mlops_helpers.seldon_kind import modelwork
from mlops_helpers.seldon_kind.catalog import FOLDERS
from mlops_helpers.seldon_kind.modelwork import build_image, digest, model_class
from tests.fixtures.seldon_kind import GROUP, FullRun

MODELS = scenarios_dir() / "seldon_kind" / "models"
pytestmark = pytest.mark.xdist_group(GROUP)


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_folder_tests_pass(name: str, full_run: FullRun) -> None:
    result = full_run.results["unit_tests"]["folders"][name]
    assert result["passed"], Path(result["log"]).read_text()
    assert "passed" in result["summary"] and "failed" not in result["summary"]
    assert result["source"] == modelwork.tested_digest(
        MODELS / name
    )  # the run tested these folders


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_folder_has_what_a_model_repo_needs(name: str) -> None:
    folder = MODELS / name
    for needed in (
        "Dockerfile",
        "requirements.txt",
        "seldondeployment.yaml",
        "train.py",
        ".s2i/environment",
        "pytest.ini",
        f"{FOLDERS[name].server_class}.py",
    ):
        assert (folder / needed).is_file(), f"{name} lacks {needed}"
    assert model_class(folder) == FOLDERS[name].server_class
    assert "seldon-core==1.18.2" in (folder / "requirements.txt").read_text()


def test_image_tag_follows_content_and_skips_tests(tmp_path: Path) -> None:
    first = build_image(MODELS, FOLDERS["linear_server"], tmp_path)
    again = build_image(MODELS, FOLDERS["linear_server"], tmp_path)
    assert first == again
    staged = Path(first["path"])
    assert (staged / "LinearServer.py").is_file() and not (staged / "tests").exists()
    assert first["tag"] == digest(staged)[:12]
    assert first["ref"] == f"seldon-workshop/linear-server:{first['tag']}"
