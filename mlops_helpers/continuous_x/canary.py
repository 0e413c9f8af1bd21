"""The canary gate: may canary's version replace production's, on their live figures?

The router (``router.py``) sends a share of production's traffic to canary and keeps, per
environment and model version, each request's time, status and latency. The gate compares
the canary with what production served *in the same window* (since the canary's first
request), so a machine that is busier now than an hour ago slows both sides alike. It
passes when

- both sides served at least ``canary_min_requests`` requests in that window;
- canary's error rate is at most production's plus ``canary_max_error_increase``;
- canary's **median** latency is at most production's median times
  ``canary_max_p50_ratio``, plus ``canary_p50_slack_ms`` (both are a few milliseconds on
  loopback, where a ratio alone would judge noise).

Why the median and not the p95: the p95 of 60 requests is the third slowest one, so one
busy moment of the machine decides it. The median of 50 requests sits between the 25th and
26th: a handful of slow requests cannot move it, while a model that is really slower moves
all of them. The same rules run in the notebook, the CLI and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_helpers.config import Settings


@dataclass(frozen=True)
class CanaryRules:
    min_requests: int
    max_error_increase: float
    max_p50_ratio: float
    p50_slack_ms: float

    @classmethod
    def from_settings(cls, settings: Settings) -> CanaryRules:
        """Read when the gate runs, so ``-p canary_min_requests 500`` takes effect (each
        typed and range-checked by its declaration in spec.py)."""
        return cls(
            settings.canary_min_requests,
            settings.canary_max_error_increase,
            settings.canary_max_p50_ratio,
            settings.canary_p50_slack_ms,
        )


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]
    canary: dict[str, Any]
    production: dict[str, Any]


EMPTY: dict[str, Any] = {"requests": 0, "error_rate": None, "p50_ms": None, "p95_ms": None}


def judge(
    canary: dict[str, Any] | None, production: dict[str, Any] | None, rules: CanaryRules
) -> Verdict:
    """Compare canary's figures with production's of the same window (``Figures.summary()``
    shapes: production's taken ``since`` canary's first request)."""
    canary = canary or EMPTY
    production = production or EMPTY
    reasons = []
    if canary["requests"] < rules.min_requests:
        reasons.append(
            f"canary has served {canary['requests']} requests, fewer than the "
            f"{rules.min_requests} needed to judge it"
        )
    if production["requests"] < rules.min_requests:
        reasons.append(
            f"production has served {production['requests']} requests since the canary's "
            f"first, fewer than the {rules.min_requests} needed to compare with"
        )
    if not reasons:
        error_limit = production["error_rate"] + rules.max_error_increase
        if canary["error_rate"] > error_limit:
            reasons.append(
                f"canary error rate {canary['error_rate']:.2%} is above "
                f"{error_limit:.2%} (production {production['error_rate']:.2%} "
                f"+ {rules.max_error_increase:.2%})"
            )
        latency_limit = production["p50_ms"] * rules.max_p50_ratio + rules.p50_slack_ms
        if canary["p50_ms"] > latency_limit:
            reasons.append(
                f"canary median latency {canary['p50_ms']:.1f} ms is above "
                f"{latency_limit:.1f} ms (production {production['p50_ms']:.1f} ms "
                f"x {rules.max_p50_ratio:g} + {rules.p50_slack_ms:g} ms, same window)"
            )
    return Verdict(not reasons, reasons, canary, production)
