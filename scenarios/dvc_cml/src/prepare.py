"""Stage prepare: split scikit-learn's bundled wine data set into train and test CSVs."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified split, so both parts keep the class balance."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"prepare.test_size must be between 0 and 1, got {test_size}")
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame["target"]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main() -> None:
    from src.params import load_params

    params = load_params()["prepare"]
    frame = load_wine(as_frame=True).frame  # bundled with scikit-learn: no download
    train, test = split(frame, float(params["test_size"]), int(params["seed"]))
    Path("data").mkdir(exist_ok=True)
    train.to_csv("data/train.csv", index=False)
    test.to_csv("data/test.csv", index=False)


if __name__ == "__main__":
    main()
