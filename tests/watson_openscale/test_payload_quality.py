"""Payload building (no index column) and the quality monitor's arithmetic."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_helpers.watson_openscale import feedback, payload, quality


def test_payload_from_a_frame_never_carries_its_index() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}, index=[10, 11])
    body = payload.from_frame(frame)
    assert body == {"input_data": [{"fields": ["a", "b"], "values": [[1.0, 3.0], [2.0, 4.0]]}]}
    # a frame read back from a CSV written with its index has an "Unnamed: 0" column
    with_index = frame.reset_index().rename(columns={"index": "Unnamed: 0"})
    assert payload.from_frame(with_index)["input_data"][0]["fields"] == ["a", "b"]
    assert payload.from_frame(frame.reset_index())["input_data"][0]["fields"] == ["a", "b"]
    with pytest.raises(payload.PayloadError, match="no column"):
        payload.from_frame(frame, fields=["a", "c"])


def test_parse_reorders_fields_and_refuses_too_many_rows() -> None:
    body = payload.from_rows(["b", "a"], [[2.0, 1.0]])
    assert payload.parse(body, ["a", "b"]) == [[1.0, 2.0]]
    big = payload.from_rows(["a"], [[1.0]] * (payload.MAX_ROWS + 1))
    with pytest.raises(payload.PayloadError) as err:
        payload.parse(big, ["a"])
    assert err.value.status == 413


def test_metrics_judged_against_lower_limits() -> None:
    result = quality.compute([0, 0, 1, 1, 2], [0, 0, 1, 2, 2])
    assert result["values"]["accuracy"] == pytest.approx(0.8)
    assert result["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [0, 0, 1]]
    metrics = quality.judge(
        result["values"],
        [
            {"metric_id": "accuracy", "type": "lower_limit", "value": 0.9},
            {"metric_id": "weighted_f1", "type": "lower_limit", "value": 0.5},
        ],
    )
    by_name = {m["metric"]: m for m in metrics}
    assert by_name["accuracy"]["passed"] is False
    assert by_name["weighted_f1"]["passed"] is True
    assert by_name["weighted_recall"]["passed"] is None
    assert quality.failures(metrics) == ["accuracy 0.800 is below its lower limit 0.9"]


def test_degraded_labels_are_wrong_in_the_asked_fraction() -> None:
    labels = list(range(10)) * 10
    noisy = feedback.degrade(labels, 0.3, n_classes=10)
    assert sum(a != b for a, b in zip(labels, noisy, strict=True)) == 30
    assert feedback.degrade(labels, 0.0, n_classes=10) == labels
