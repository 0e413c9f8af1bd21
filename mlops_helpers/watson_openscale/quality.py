"""The quality monitor's arithmetic: metrics of labelled feedback and their thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_helpers.config import Settings

# metric id -> the setting that holds its lower limit (OpenScale's threshold type)
THRESHOLD_SETTINGS = {
    "accuracy": "min_accuracy",
    "weighted_f1": "min_weighted_f1",
    "weighted_precision": "min_weighted_precision",
    "weighted_recall": "min_weighted_recall",
}


def thresholds_from(settings: Settings) -> list[dict[str, Any]]:
    """``[{"metric_id", "type": "lower_limit", "value"}]`` for every metric with a limit
    (each a declared share of rows in [0, 1]; an unset one is reported, not gated)."""
    limits = {metric: settings.get(key) for metric, key in THRESHOLD_SETTINGS.items()}
    return [
        {"metric_id": metric, "type": "lower_limit", "value": value}
        for metric, value in limits.items()
        if value is not None
    ]


def compute(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = sorted(set(y_true) | set(y_pred))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="weighted", zero_division=0
    )
    return {
        "values": {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "weighted_f1": float(f1),
            "weighted_precision": float(precision),
            "weighted_recall": float(recall),
        },
        "labels": [int(v) for v in labels],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def judge(values: dict[str, float], thresholds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each metric with its threshold and pass/fail (``passed`` is None without a limit)."""
    limits = {t["metric_id"]: t for t in thresholds}
    out = []
    for metric, value in values.items():
        limit = limits.get(metric)
        passed = None
        if limit is not None:
            passed = (
                value >= limit["value"]
                if limit["type"] == "lower_limit"
                else value <= limit["value"]
            )
        out.append(
            {
                "metric": metric,
                "value": round(value, 6),
                "threshold": None if limit is None else limit["value"],
                "threshold_type": None if limit is None else limit["type"],
                "passed": passed,
            }
        )
    return out


def failures(metrics: list[dict[str, Any]]) -> list[str]:
    """One sentence per failed metric: its value and the threshold it missed."""
    words = {"lower_limit": "below its lower limit", "upper_limit": "above its upper limit"}
    return [
        f"{m['metric']} {m['value']:.3f} is {words.get(m['threshold_type'], 'outside')} "
        f"{m['threshold']}"
        for m in metrics
        if m["passed"] is False
    ]
