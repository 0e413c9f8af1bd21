"""The canary gate's statistic: production's figures of the same window, the median, and
enough requests for it (issue 27: the p95 of 58 requests judged one busy moment)."""

from __future__ import annotations

import random
from pathlib import Path

from mlops_helpers.config import Settings
from mlops_helpers.continuous_x.canary import CanaryRules, judge
from mlops_helpers.continuous_x.router import Figures

# the rules as the gate reads them when nothing is set: the spec's defaults
RULES = CanaryRules.from_settings(
    Settings.load("continuous_x", environ={}, env_file=Path("/nonexistent/.env"))
)


def figures(latencies: list[float], start: float = 0.0, status: int = 200) -> Figures:
    seen = Figures()
    for i, latency in enumerate(latencies):
        seen.add(status, latency, at=start + i)
    return seen


def test_a_few_slow_requests_do_not_fail_a_canary_as_fast_as_production() -> None:
    """A busy core: four of 60 canary requests take 60 ms. The p95 would be 60 ms against
    production's 30; the median does not move."""
    rng = random.Random(27)
    production = figures([rng.uniform(10, 30) for _ in range(540)])
    canary = figures([rng.uniform(10, 30) for _ in range(56)] + [60.0] * 4)
    assert canary.summary()["p95_ms"] >= 60.0  # what the old rule judged
    verdict = judge(canary.summary(), production.summary(), RULES)
    assert verdict.passed, verdict.reasons


def test_a_canary_that_is_really_slower_is_refused() -> None:
    production = figures([20.0] * 500)
    canary = figures([90.0] * 55)
    verdict = judge(canary.summary(), production.summary(), RULES)
    assert not verdict.passed
    assert "canary median latency 90.0 ms is above 41.0 ms" in verdict.reasons[0]


def test_too_few_requests_on_either_side_are_not_judged() -> None:
    few = figures([20.0] * (RULES.min_requests - 1))
    many = figures([20.0] * 500)
    assert "canary has served 49 requests" in judge(few.summary(), many.summary(), RULES).reasons[0]
    assert "production has served 49" in judge(many.summary(), few.summary(), RULES).reasons[0]


def test_production_is_compared_in_the_canary_s_window() -> None:
    """Production was fast an hour ago and is slow now, like canary: the window since the
    canary's first request is what counts."""
    production = figures([5.0] * 1000, start=0.0)
    for i in range(200):
        production.add(200, 40.0, at=5000.0 + i)
    canary = figures([45.0] * 60, start=5000.0)
    whole = judge(canary.summary(), production.summary(), RULES)
    window = judge(canary.summary(), production.summary(since=5000.0), RULES)
    assert not whole.passed and window.passed, (whole.reasons, window.reasons)
    assert production.summary(since=5000.0)["requests"] == 200


def test_errors_above_production_s_rate_are_refused() -> None:
    production = figures([20.0] * 500)
    canary = figures([20.0] * 50)
    canary.add(502, 20.0, at=100.0)
    verdict = judge(canary.summary(), production.summary(), RULES)
    assert not verdict.passed and "error rate" in verdict.reasons[0]
