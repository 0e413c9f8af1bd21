"""The canary gate: may canary's version replace production's, on their live figures?

The router (``router.py``) sends a share of production's traffic to canary and keeps, per
environment and model version, the request count, the error rate (5xx and unreachable) and
the latency. The canary passes when it has seen enough requests, its error rate is no worse
than production's by more than a set margin, and its p95 latency is no worse than
production's by more than a set ratio (plus a small absolute slack, since on loopback both
are around a millisecond and a ratio alone would judge noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_helpers.config import Settings
from mlops_helpers.errors import ConfigError

GATE_DEFAULTS: dict[str, Any] = {
    "canary_min_requests": 100,  # canary requests needed before it is judged
    "canary_max_error_increase": 0.01,  # canary error rate <= production's + this
    "canary_max_p95_ratio": 1.5,  # canary p95 <= production's p95 x this + the slack
    "canary_p95_slack_ms": 5.0,
}


@dataclass(frozen=True)
class CanaryRules:
    min_requests: int
    max_error_increase: float
    max_p95_ratio: float
    p95_slack_ms: float

    @classmethod
    def from_settings(cls, settings: Settings) -> CanaryRules:
        """Read when the gate runs, so ``-p canary_min_requests 500`` takes effect."""

        def get(key: str, cast: Any) -> Any:
            return settings.get(key, GATE_DEFAULTS[key], cast)

        rules = cls(
            get("canary_min_requests", int),
            get("canary_max_error_increase", float),
            get("canary_max_p95_ratio", float),
            get("canary_p95_slack_ms", float),
        )
        if (
            rules.min_requests < 1
            or not 0 <= rules.max_error_increase <= 1
            or (rules.max_p95_ratio < 1 or rules.p95_slack_ms < 0)
        ):
            raise ConfigError(f"canary gate settings out of range: {rules}")
        return rules


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]
    canary: dict[str, Any]
    production: dict[str, Any]


def judge(
    canary: dict[str, Any] | None, production: dict[str, Any] | None, rules: CanaryRules
) -> Verdict:
    """Compare the two environments' figures (``Figures.summary()`` shapes)."""
    canary = canary or {"requests": 0, "error_rate": None, "p95_ms": None}
    production = production or {"requests": 0, "error_rate": None, "p95_ms": None}
    reasons = []
    if canary["requests"] < rules.min_requests:
        reasons.append(
            f"canary has served {canary['requests']} requests, fewer than the "
            f"{rules.min_requests} needed to judge it"
        )
    if production["requests"] < rules.min_requests:
        reasons.append(
            f"production has served {production['requests']} requests, fewer "
            f"than the {rules.min_requests} needed to compare with"
        )
    if not reasons:
        error_limit = production["error_rate"] + rules.max_error_increase
        if canary["error_rate"] > error_limit:
            reasons.append(
                f"canary error rate {canary['error_rate']:.2%} is above "
                f"{error_limit:.2%} (production {production['error_rate']:.2%} "
                f"+ {rules.max_error_increase:.2%})"
            )
        latency_limit = production["p95_ms"] * rules.max_p95_ratio + rules.p95_slack_ms
        if canary["p95_ms"] > latency_limit:
            reasons.append(
                f"canary p95 latency {canary['p95_ms']:.1f} ms is above "
                f"{latency_limit:.1f} ms (production {production['p95_ms']:.1f} ms "
                f"x {rules.max_p95_ratio} + {rules.p95_slack_ms:.0f} ms)"
            )
    return Verdict(not reasons, reasons, canary, production)
