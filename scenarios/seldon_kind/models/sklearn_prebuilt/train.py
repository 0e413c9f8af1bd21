"""Train the model this folder deploys: a scikit-learn pipeline saved as an artifact.

The artifact (``model.joblib`` + ``meta.json``) is what the pre-built server loads from its
model URI; no image is built for the model itself.

    python train.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(out: Path, seed: int = 0) -> dict:
    data = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(x_train, y_train)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    meta = {
        "dataset": "iris",
        "n_features": int(data.data.shape[1]),
        "class_names": [str(n) for n in data.target_names],
        "accuracy": float(model.score(x_test, y_test)),
        "sample": x_test[:3].tolist(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


if __name__ == "__main__":
    print(json.dumps(train(Path(sys.argv[1]))))
