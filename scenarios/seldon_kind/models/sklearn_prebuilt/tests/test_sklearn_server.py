"""The pre-built server loads any joblib model from its URI and refuses bad rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from seldon_core.flask_utils import SeldonMicroserviceException

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from SKLearnServer import SKLearnServer  # noqa: E402
from train import train  # noqa: E402


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    meta = train(out)
    assert meta["accuracy"] >= 0.9
    return out


def test_probabilities_for_a_row(artifact: Path) -> None:
    server = SKLearnServer(model_uri=str(artifact))
    proba = server.predict([[5.1, 3.5, 1.4, 0.2]])
    assert proba.shape == (1, 3)
    assert np.isclose(proba.sum(), 1.0) and proba[0].argmax() == 0


def test_predict_method_gives_labels(artifact: Path) -> None:
    server = SKLearnServer(model_uri=str(artifact / "model.joblib"), method="predict")
    assert server.predict([[6.7, 3.0, 5.2, 2.3]]).tolist() == [2]


@pytest.mark.parametrize("rows", [[[1.0, 2.0]], [["a", "b", "c", "d"]], [], [[float("nan")] * 4]])
def test_bad_rows_are_refused_with_400(artifact: Path, rows: list) -> None:
    server = SKLearnServer(model_uri=str(artifact))
    with pytest.raises(SeldonMicroserviceException) as info:
        server.predict(rows)
    assert info.value.status_code == 400


def test_missing_model_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SKLearnServer(model_uri=str(tmp_path))
