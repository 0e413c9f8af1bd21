"""Stage evaluate: metrics (metrics.json) and predictions for the confusion plot."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss


def score(model: Any, test: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    features, labels = test.drop(columns="target"), test["target"]
    predicted = model.predict(features)
    metrics = {
        "accuracy": round(float(accuracy_score(labels, predicted)), 4),
        "f1_macro": round(float(f1_score(labels, predicted, average="macro")), 4),
        "log_loss": round(float(log_loss(labels, model.predict_proba(features))), 4),
    }
    pairs = pd.DataFrame({"actual": labels, "predicted": predicted})
    return metrics, pairs


def main() -> None:
    model = pickle.loads(Path("model/model.pkl").read_bytes())
    metrics, pairs = score(model, pd.read_csv("data/test.csv"))
    Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    Path("plots").mkdir(exist_ok=True)
    pairs.to_csv("plots/confusion.csv", index=False)


if __name__ == "__main__":
    main()
