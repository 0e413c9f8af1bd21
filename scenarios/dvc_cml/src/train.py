"""Stage train: a scaled logistic regression on the training split."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def fit(train: pd.DataFrame, c: float, max_iter: int) -> Pipeline:
    if c <= 0:
        raise ValueError(f"train.C must be positive, got {c}")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    return model.fit(train.drop(columns="target"), train["target"])


def main() -> None:
    from src.params import load_params

    params = load_params()["train"]
    model = fit(pd.read_csv("data/train.csv"), float(params["C"]), int(params["max_iter"]))
    Path("model").mkdir(exist_ok=True)
    Path("model/model.pkl").write_bytes(pickle.dumps(model))


if __name__ == "__main__":
    main()
