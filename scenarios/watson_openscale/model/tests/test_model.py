"""The model's own tests: they run in this folder, before the pipeline stores anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import model


def test_config_names_the_label_and_problem_type() -> None:
    config = model.load_config()
    assert config["label_column"] and config["problem_type"] == "multiclass"


def test_trained_model_is_accurate_on_held_out_rows() -> None:
    config = model.load_config()
    split = model.load_data(config)
    assert len(split.feature_names) == split.X_train.shape[1] == 64
    fitted = model.train(split.X_train, split.y_train, config)
    labels, _ = model.predict(fitted, split.X_test)
    assert np.mean(np.asarray(labels) == split.y_test) > 0.9


def test_save_load_predict_gives_labels_and_probabilities(tmp_path: Path) -> None:
    config = model.load_config()
    split = model.load_data(config)
    fitted = model.train(split.X_train[:300], split.y_train[:300], config)
    loaded = model.load(model.save(fitted, tmp_path / "model.joblib"))
    labels, probabilities = model.predict(loaded, split.X_test[:5])
    assert len(labels) == len(probabilities) == 5
    assert all(abs(sum(p) - 1) < 1e-4 and len(p) == 10 for p in probabilities)
    assert labels == [int(np.argmax(p)) for p in probabilities]
