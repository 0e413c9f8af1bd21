"""The reusable linear server serves any exported model and refuses bad rows."""

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

from LinearServer import LinearServer  # noqa: E402
from train import train  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for dataset in ("iris", "wine"):
        folder = tmp_path_factory.mktemp(dataset)
        assert train(dataset, folder)["accuracy"] >= 0.9
        out[dataset] = folder
    return out


def test_one_server_class_serves_two_models(models: dict[str, Path]) -> None:
    iris = LinearServer(model_uri=str(models["iris"]))
    wine = LinearServer(model_uri=str(models["wine"]))
    assert iris.predict([[5.1, 3.5, 1.4, 0.2]]).shape == (1, 3)
    assert wine.predict([[13.0] * 13]).shape == (1, 3)
    assert np.allclose(iris.predict([[5.1, 3.5, 1.4, 0.2]]).sum(axis=1), 1.0)


def test_label_output(models: dict[str, Path]) -> None:
    server = LinearServer(model_uri=str(models["iris"]), output="label")
    assert server.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]).tolist() == [
        "setosa",
        "virginica",
    ]


@pytest.mark.parametrize(
    "rows",
    [
        [[1.0]],
        [["x"] * 4],
        [],
        [[float("inf")] * 4],
        [[float("nan")] * 4],
        [[10**400] * 4],
        [[1e308] * 4],
    ],
)
def test_bad_rows_are_refused_with_400(models: dict[str, Path], rows: list) -> None:
    with pytest.raises(SeldonMicroserviceException) as info:
        LinearServer(model_uri=str(models["iris"])).predict(rows)
    assert info.value.status_code == 400


def test_unknown_output_is_refused(models: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="output"):
        LinearServer(model_uri=str(models["iris"]), output="logits")


def test_wrapper_errors_are_json_4xx() -> None:
    """404/405 and form fields that are not JSON: a JSON 4xx, not seldon's catch-all 500."""
    app = Flask(__name__)
    app.register_blueprint(LinearServer.model_error_handler)

    @app.route("/api/v1.0/predictions", methods=["POST"])
    def predictions() -> dict:
        return json.loads(request.form["json"])  # what seldon does with a form field

    client = app.test_client()
    assert client.get("/api/v1.0/predictions").status_code == 405
    assert client.post("/nowhere").status_code == 404
    answer = client.post("/api/v1.0/predictions", data={"json": "{not json"})
    assert answer.status_code == 400
    assert answer.get_json()["status"]["reason"] == "MICROSERVICE_BAD_DATA"
