"""Feedback rows: labelled examples for the quality monitor, checked before they are stored."""

from __future__ import annotations

import math
from typing import Any

from mlops_helpers.errors import StageError


class FeedbackRejected(StageError):
    """Feedback that cannot be stored (a missing label, wrong fields); nothing was stored."""


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def check(
    fields: list[str], rows: list[list[Any]], features: list[str], label: str
) -> list[tuple[list[float], int]]:
    """``(features in model order, label)`` per row, or ``FeedbackRejected`` saying why.

    The whole batch is refused when one row is bad, so a retry cannot store half of it twice.
    """
    if label not in fields:
        raise FeedbackRejected(f"feedback has no label column '{label}' (fields: {fields[:3]}...)")
    missing = [f for f in features if f not in fields]
    if missing:
        raise FeedbackRejected(f"feedback lacks feature field(s) {missing[:5]}")
    at = {name: i for i, name in enumerate(fields)}
    no_label = [
        i for i, row in enumerate(rows) if len(row) != len(fields) or _missing(row[at[label]])
    ]
    if no_label:
        raise FeedbackRejected(
            f"{len(no_label)} feedback row(s) have a missing label or the "
            f"wrong length (rows {no_label[:10]}); none were stored"
        )
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(([float(row[at[f]]) for f in features], int(row[at[label]])))
        except (TypeError, ValueError) as exc:
            raise FeedbackRejected(f"feedback row {i}: {exc}; none were stored") from None
    return out


def degrade(labels: list[int], fraction: float, n_classes: int, seed: int = 0) -> list[int]:
    """Replace ``fraction`` of the labels with a different class (seeded): bad feedback."""
    import numpy as np

    if not 0 <= fraction <= 1:
        raise StageError(f"feedback_label_noise must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    out = list(labels)
    for i in rng.choice(len(out), size=round(fraction * len(out)), replace=False):
        out[i] = int((out[i] + rng.integers(1, n_classes)) % n_classes)
    return out
