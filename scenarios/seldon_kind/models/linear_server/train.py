"""Train one model for the reusable linear server and export its weights as JSON.

python train.py DATASET OUT_DIR      # DATASET: iris or wine (scikit-learn's bundled sets)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

DATASETS = {"iris": load_iris, "wine": load_wine}


def train(dataset: str, out: Path, seed: int = 0) -> dict:
    if dataset not in DATASETS:
        raise SystemExit(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    data = DATASETS[dataset]()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=1000).fit(scaler.transform(x_train), y_train)
    accuracy = float(model.score(scaler.transform(x_test), y_test))
    exported = {
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
        "class_names": [str(n) for n in data.target_names],
        "feature_names": [str(n) for n in data.feature_names],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps(exported))
    meta = {
        "dataset": dataset,
        "n_features": int(data.data.shape[1]),
        "class_names": exported["class_names"],
        "accuracy": accuracy,
        "sample": x_test[:3].tolist(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


if __name__ == "__main__":
    print(json.dumps(train(sys.argv[1], Path(sys.argv[2]))))
