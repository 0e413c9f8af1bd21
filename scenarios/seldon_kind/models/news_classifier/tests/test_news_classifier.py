"""The embedded news classifier: trained on a tiny corpus, it classifies and refuses junk."""

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

from NewsClassifier import NewsClassifier  # noqa: E402
from train import train  # noqa: E402

CORPUS = {
    "sport": [
        "the striker scored twice in the final",
        "the team won the league match",
        "the coach praised the goalkeeper",
        "a late goal decided the cup tie",
    ],
    "tech": [
        "the new phone has a faster chip",
        "the software update fixes a security bug",
        "engineers released the open source library",
        "the laptop battery lasts longer",
    ],
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [t for texts in CORPUS.values() for t in texts] * 3
    labels = [label for label, texts in CORPUS.items() for _ in texts] * 3
    out = tmp_path_factory.mktemp("news")
    train(texts, labels, out)
    return out


def test_classifies_texts(model_dir: Path) -> None:
    server = NewsClassifier(model_dir=str(model_dir))
    proba = server.predict(
        np.array([["the goalkeeper saved the match"], ["a security update for the phone"]])
    )
    assert proba.shape == (2, 2)
    assert [server.class_names[i] for i in proba.argmax(axis=1)] == ["sport", "tech"]


def test_flat_list_of_texts_works(model_dir: Path) -> None:
    assert NewsClassifier(model_dir=str(model_dir)).predict(["the coach"]).shape == (1, 2)


@pytest.mark.parametrize("bad", [[["   "]], [[1.5]], [], [["a", "b"]]])
def test_bad_input_is_refused_with_400(model_dir: Path, bad: list) -> None:
    with pytest.raises(SeldonMicroserviceException) as info:
        NewsClassifier(model_dir=str(model_dir)).predict(np.array(bad, dtype=object))
    assert info.value.status_code == 400


def test_without_a_trained_model_it_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run train.py"):
        NewsClassifier(model_dir=str(tmp_path))


def test_wrapper_errors_are_json_4xx() -> None:
    """404/405 and form fields that are not JSON: a JSON 4xx, not seldon's catch-all 500."""
    app = Flask(__name__)
    app.register_blueprint(NewsClassifier.model_error_handler)

    @app.route("/api/v1.0/predictions", methods=["POST"])
    def predictions() -> dict:
        return json.loads(request.form["json"])  # what seldon does with a form field

    client = app.test_client()
    assert client.get("/api/v1.0/predictions").status_code == 405
    assert client.post("/nowhere").status_code == 404
    answer = client.post("/api/v1.0/predictions", data={"json": "{not json"})
    assert answer.status_code == 400
    assert answer.get_json()["status"]["reason"] == "MICROSERVICE_BAD_DATA"
