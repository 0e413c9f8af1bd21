"""The pure functions of each stage, on small frames: no files, no DVC."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.datasets import load_wine

from src.evaluate import score
from src.prepare import split
from src.train import fit


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def test_split_is_stratified_and_complete(wine: pd.DataFrame) -> None:
    train, test = split(wine, 0.3, 1)
    assert len(train) + len(test) == len(wine)
    assert set(test["target"]) == set(wine["target"])


def test_split_rejects_bad_size(wine: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="test_size"):
        split(wine, 1.5, 1)


def test_fit_and_score(wine: pd.DataFrame) -> None:
    train, test = split(wine, 0.3, 1)
    metrics, pairs = score(fit(train, 1.0, 500), test)
    assert metrics["accuracy"] > 0.8
    assert 0 <= metrics["f1_macro"] <= 1
    assert list(pairs.columns) == ["actual", "predicted"]
    assert len(pairs) == len(test)


def test_fit_rejects_non_positive_c(wine: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="train.C"):
        fit(wine, 0.0, 10)
