"""The churn risk every assessment carries: the default mapping, carried to the plan's
horizon, and a calibrated one. Expected figures are worked out by hand in the comments
(models/scoring/risk.py, docs/scoring.md)."""

from __future__ import annotations

import math

import pytest

from models.plan import RiskSettings, ScoringSettings
from models.scoring import assess, churn_risk
from tests.test_scoring_usage import AS_OF, SETTINGS, TOL, at

# --------------------------------------------------------------------------- churn risk


def logistic(z: float) -> float:
    return 1 / (1 + math.exp(-z))


@pytest.mark.parametrize(
    ("customer", "company", "expected"),
    [
        (0.0, 0.0, logistic(-2.2)),  # neutral: 0.0998
        (-1.0, 0.0, logistic(-2.2 + 3.0)),  # walkaway angry: 0.6900
        (0.5, 0.5, logistic(-2.2 - 1.5 - 0.25)),  # 0.0189
        (None, 0.5, logistic(-2.2 - 0.25)),  # a missing axis counts as neutral
    ],
)
def test_default_risk_mapping(
    customer: float | None, company: float | None, expected: float
) -> None:
    assert churn_risk(RiskSettings(), {}, customer, company) == pytest.approx(expected)


def test_the_default_mapping_is_carried_to_the_plans_horizon() -> None:
    # A neutral account: 0.0998 over 90 days; over 30 days 1 - (1 - 0.0998) ** (1/3) = 0.0344,
    # over 365 days 1 - 0.9002 ** (365/90) = 0.3470. The same signals, another horizon.
    ninety = logistic(-2.2)
    assert churn_risk(RiskSettings(horizon_days=30), {}, 0.0, 0.0) == pytest.approx(
        0.0344, abs=1e-4
    )
    assert churn_risk(RiskSettings(horizon_days=365), {}, 0.0, 0.0) == pytest.approx(
        1 - (1 - ninety) ** (365 / 90)
    )
    assert churn_risk(RiskSettings(horizon_days=365), {}, 0.0, 0.0) == pytest.approx(
        0.3470, abs=1e-4
    )


def test_a_calibrated_mapping_is_already_at_its_horizon() -> None:
    risk = RiskSettings(horizon_days=30, intercept=0.0, coefficients={"nps": -1})
    assert churn_risk(risk, {}, None, None) == pytest.approx(0.5)


def test_calibrated_risk_uses_the_coefficients() -> None:
    # z = -1 + (-2) * (-0.5) + 3 * 0 (breadth missing counts 0) = 0 -> 0.5
    risk = RiskSettings(intercept=-1, coefficients={"usage_trend": -2, "breadth": 3})
    assert churn_risk(risk, {"usage_trend": -0.5}, 0.9, 0.9) == pytest.approx(0.5)


def test_every_assessment_carries_its_churn_risk_and_at_risk_by_the_plans_rule() -> None:
    # nps 4 -> -1; customer -1, company (revenue, estimated cost 300 of 1000: 0.7 -> 0.875).
    observations = [at("nps", 4), at("revenue", 1000, 10)]
    quadrant_rule = assess(observations, SETTINGS, AS_OF)
    expected = logistic(-2.2 + 3.0 - 0.5 * 0.875)  # 0.5896
    assert quadrant_rule.churn_risk == pytest.approx(expected, abs=TOL)
    assert quadrant_rule.horizon_days == 90
    assert quadrant_rule.at_risk  # unhappy_profitable
    lenient = ScoringSettings(risk=RiskSettings(at_risk="churn_risk", threshold=0.6))
    assert not assess(observations, lenient, AS_OF).at_risk
    strict = ScoringSettings(risk=RiskSettings(at_risk="churn_risk", threshold=0.5))
    assert assess(observations, strict, AS_OF).at_risk
