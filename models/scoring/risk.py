"""Churn risk: the probability that the account churns within the plan's horizon.

Until a team calibrates (`tandem calibrate`), the risk comes from the two axes through a
fixed logistic mapping: z = intercept + customer_slope * customer + company_slope *
company, a missing axis counting as 0 (neutral). The defaults (-2.2, -3.0, -0.5) put a
neutral account at about 10 % over 90 days, a walkaway-angry one (customer -1) near 69 %
and a gushing promoter near 0.5 %: a documented starting point, not a measurement. That
mapping is a 90-day one: under a plan with another horizon its risk is carried over to
that horizon at the same hazard. Calibrated, the plan holds one coefficient per
component and z = intercept + sum of coefficient * component (a missing component
counting as 0, its neutral point), fitted at the plan's own horizon.
"""

from __future__ import annotations

import math

from models.plan import RiskSettings

# The horizon the uncalibrated mapping's numbers (intercept and slopes) are for.
MAPPING_DAYS = 90


def logistic(z: float) -> float:
    if z < -700:  # exp overflows: the probability is 0 to any precision we print
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def risk_log_odds(
    settings: RiskSettings,
    components: dict[str, float],
    customer: float | None,
    company: float | None,
) -> float:
    if settings.coefficients:
        return settings.intercept + sum(
            coefficient * components.get(name, 0.0)
            for name, coefficient in settings.coefficients.items()
        )
    return (
        settings.intercept
        + settings.customer_slope * (customer or 0.0)
        + settings.company_slope * (company or 0.0)
    )


def churn_risk(
    settings: RiskSettings,
    components: dict[str, float],
    customer: float | None,
    company: float | None,
) -> float:
    risk = logistic(risk_log_odds(settings, components, customer, company))
    if settings.coefficients:
        return risk
    return over_horizon(risk, MAPPING_DAYS, settings.horizon_days)


def over_horizon(risk: float, from_days: int, to_days: int) -> float:
    """The same hazard over another horizon: 1 - (1 - p) ** (to / from)."""
    if to_days == from_days:
        return risk  # exactly: the round trip through 1 - p would change its last digit
    return 1.0 - (1.0 - risk) ** (to_days / from_days)
