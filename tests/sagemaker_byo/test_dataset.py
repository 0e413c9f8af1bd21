"""The data the train stage uploads: scikit-learn's split, kept once per version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlops_helpers.data import load_dataset
from mlops_helpers.errors import UnknownNameError
from mlops_helpers.sagemaker_byo.dataset import split_dir, target_names, write_csvs


def test_the_kept_split_is_scikit_learns_split(tmp_path: Path) -> None:
    files = write_csvs("iris", tmp_path)
    data = load_dataset("iris")
    for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test)):
        rows = np.loadtxt(files[split], delimiter=",")  # label first, no header
        assert np.allclose(rows[:, 1:], X) and (rows[:, 0] == y).all()
    assert target_names("iris") == data.target_names
    assert (split_dir("iris") / "test.csv").is_file()


def test_an_unknown_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError):
        write_csvs("newsgroups", tmp_path)
    assert not split_dir("newsgroups").exists()
