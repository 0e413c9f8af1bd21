"""The pre-built server loads any joblib model from its URI and refuses bad rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from flask import Flask, request
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


@pytest.mark.parametrize(
    "rows",
    [
        [[1.0, 2.0]],
        [["a", "b", "c", "d"]],
        [],
        [[float("nan")] * 4],
        [[10**400] * 4],
        [[1e308] * 4],
    ],
)
def test_bad_rows_are_refused_with_400(artifact: Path, rows: list) -> None:
    server = SKLearnServer(model_uri=str(artifact))
    with pytest.raises(SeldonMicroserviceException) as info:
        server.predict(rows)
    assert info.value.status_code == 400


def test_missing_model_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SKLearnServer(model_uri=str(tmp_path))


def test_wrapper_errors_are_json_4xx() -> None:
    """404/405 and form fields that are not JSON: a JSON 4xx, not seldon's catch-all 500."""
    app = Flask(__name__)
    app.register_blueprint(SKLearnServer.model_error_handler)

    @app.route("/api/v1.0/predictions", methods=["POST"])
    def predictions() -> dict:
        return json.loads(request.form["json"])  # what seldon does with a form field

    client = app.test_client()
    assert client.get("/api/v1.0/predictions").status_code == 405
    assert client.post("/nowhere").status_code == 404
    answer = client.post("/api/v1.0/predictions", data={"json": "{not json"})
    assert answer.status_code == 400
    assert answer.get_json()["status"]["reason"] == "MICROSERVICE_BAD_DATA"
