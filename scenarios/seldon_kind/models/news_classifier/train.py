"""Train the news classifier on the labelled corpus the package ships (no download).

    python train.py CORPUS_CSV OUT_DIR [C]

CORPUS_CSV has a header ``label,text``. The model (TF-IDF + logistic regression) and its
metrics go to OUT_DIR, which becomes part of the image: the model is embedded.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline


def read_corpus(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("text", "").strip()]
    if not rows:
        raise SystemExit(f"{path} holds no labelled texts")
    return [r["text"] for r in rows], [r["label"] for r in rows]


def train(texts: list[str], labels: list[str], out: Path, c: float = 10.0, seed: int = 0) -> dict:
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(C=c, max_iter=2000),
    )
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    classes = [str(k) for k in model.classes_]
    meta = {
        "C": c,
        "class_names": classes,
        "accuracy": float((predicted == y_test).mean())
        if hasattr(predicted, "mean")
        else sum(p == t for p, t in zip(predicted, y_test, strict=True)) / len(y_test),
        "confusion_matrix": confusion_matrix(y_test, predicted, labels=classes).tolist(),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "sample": list(x_test[:3]),
    }
    # the vectorizer remembers id(stop_words), a memory address: drop it so the same
    # training gives the same bytes (and so the same model version)
    model[0].__dict__.pop("_stop_words_id", None)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


if __name__ == "__main__":
    corpus_texts, corpus_labels = read_corpus(Path(sys.argv[1]))
    strength = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    result = train(corpus_texts, corpus_labels, Path(sys.argv[2]), c=strength)
    print(json.dumps({k: v for k, v in result.items() if k != "sample"}))
