"""`tandem calibrate`: fit the churn-risk mapping and the weights to the churn a team
really had, and judge the fit on a later period than the one it was fitted on.

Every recorded assessment is re-scored with the plan (simulation/backtest.py); its
components are the features, and whether the account churned within the horizon after
it is the label. The records are split in time, never shuffled: the fit sees only the
assessments whose horizon had ended by the split (their outcome was known then), and
the judgement reads the assessments after it. The model is a logistic regression with
an L2 penalty (scikit-learn): its coefficients are the plan's `[scoring.risk]`
coefficients as they are, so the plan applies the fitted model without scikit-learn.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import tomli_w
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sqlalchemy import Engine

from models.plan import COMPONENTS, CustomerWeights, RiskSettings, ScoringSettings
from simulation.backtest import load, rescore, scored
from simulation.judgement import Judgement, Scored, judge

MIN_CHURNS = 30
TRAIN_SHARE = 0.6  # of the labelled assessments, in time order, before the split
FEATURES = sorted(COMPONENTS)


class TooLittleHistory(ValueError):
    """The records hold too few churns to fit anything that generalises."""


class Calibration(BaseModel):
    horizon_days: int
    split_at: datetime
    fitted_on: int  # assessments
    fitted_churns: int
    judged_on: int
    proposed: ScoringSettings
    old: Judgement
    new: Judgement

    @property
    def toml(self) -> str:
        return scoring_toml(self.proposed)


def scoring_toml(scoring: ScoringSettings) -> str:
    """The `[scoring]` section of a plan file, as `tandem plans validate` reads it."""
    return tomli_w.dumps({"scoring": scoring.model_dump(mode="json")})


def _features(row: Scored) -> list[float]:
    return [row.components.get(name, 0.0) for name in FEATURES]


def _labelled(rows: list[Scored], horizon: int, end: datetime) -> list[tuple[Scored, bool]]:
    return [(r, label) for r in rows if (label := r.churned_within(horizon, end)) is not None]


def _threshold(probabilities: list[float], labels: list[bool]) -> float:
    """The risk above which flagging catches the most churn for the least noise on the
    fitted period (the best F1), so `at_risk` means something from the start."""
    best, best_f1 = 0.5, -1.0
    churns = sum(labels)
    for candidate in sorted(set(round(p, 4) for p in probabilities)):
        flagged = [label for p, label in zip(probabilities, labels, strict=True) if p > candidate]
        caught = sum(flagged)
        if not flagged or not caught:
            continue
        f1 = 2 * caught / (len(flagged) + churns)
        if f1 > best_f1:
            best, best_f1 = candidate, f1
    return min(max(best, 0.0001), 0.9999)


def _weights(
    coefficients: dict[str, float], current: CustomerWeights, measured: set[str]
) -> CustomerWeights:
    """Among the components measured in the fitted period, one whose higher score means
    less churn earns weight in proportion to its coefficient, one that does not earns
    none; together they keep the weight they had. Components never measured (no survey
    in the history, say) keep theirs: the history says nothing about them."""
    weights = current.model_dump()
    pull = {name: max(0.0, -coefficients.get(name, 0.0)) for name in weights if name in measured}
    total = sum(pull.values())
    if total <= 0:
        return current
    budget = sum(weights[name] for name in pull) or 1.0
    weights |= {name: round(budget * value / total, 3) for name, value in pull.items()}
    return CustomerWeights(**weights)


def fit(
    rows: list[Scored], scoring: ScoringSettings, horizon: int, end: datetime
) -> tuple[ScoringSettings, datetime, list[tuple[Scored, bool]]]:
    """The proposed scoring, the split time and the fitted rows."""
    labelled = sorted(_labelled(rows, horizon, end), key=lambda p: p[0].assessed_at)
    split_at = labelled[int(len(labelled) * TRAIN_SHARE)][0].assessed_at
    # Fitted only on what was known at the split: the assessment and its whole horizon.
    train = [
        (r, label) for r, label in labelled if r.assessed_at + timedelta(days=horizon) <= split_at
    ]
    labels = [label for _, label in train]
    if sum(labels) == 0 or all(labels):
        raise TooLittleHistory(
            f"no churn (or nothing but churn) within {horizon} days among the "
            f"{len(train)} assessments before {split_at:%Y-%m-%d}: nothing to fit"
        )
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit([_features(r) for r, _ in train], labels)
    coefficients = {
        name: round(float(c), 4) for name, c in zip(FEATURES, model.coef_[0], strict=True)
    }
    coefficients = {name: c for name, c in coefficients.items() if c != 0.0}
    probabilities = [float(p) for p in model.predict_proba([_features(r) for r, _ in train])[:, 1]]
    risk = RiskSettings(
        horizon_days=horizon,
        at_risk="churn_risk",
        threshold=round(_threshold(probabilities, labels), 4),
        intercept=round(float(model.intercept_[0]), 4),
        customer_slope=scoring.risk.customer_slope,
        company_slope=scoring.risk.company_slope,
        coefficients=coefficients,
    )
    measured = {name for r, _ in train for name in r.components}
    proposed = scoring.model_copy(
        update={"risk": risk, "weights": _weights(coefficients, scoring.weights, measured)}
    )
    # Through validation once more: what is printed is what a plan file would accept.
    return ScoringSettings.model_validate(proposed.model_dump()), split_at, train


def calibrate(
    engine: Engine,
    scoring: ScoringSettings,
    horizon_days: int | None = None,
    min_churns: int = MIN_CHURNS,
) -> Calibration:
    horizon = horizon_days or scoring.risk.horizon_days
    records = load(engine)
    end = records.end
    old_rows = scored(records, rescore(records, scoring)) if end else []
    churners = (
        {r.customer_id for r, label in _labelled(old_rows, horizon, end) if label} if end else set()
    )
    if len(churners) < min_churns:
        raise TooLittleHistory(
            f"calibrate needs at least {min_churns} accounts that churned within {horizon} "
            f"days of an assessment; the records hold {len(churners)} (of "
            f"{len(records.customers)} accounts, {len(records.assessments)} assessments, "
            f"churned in all: {len(records.churned_at)})"
        )
    assert end is not None
    proposed, split_at, train = fit(old_rows, scoring, horizon, end)
    new_rows = scored(records, rescore(records, proposed))
    later_old = [r for r in old_rows if r.assessed_at > split_at]
    later_new = [r for r in new_rows if r.assessed_at > split_at]
    return Calibration(
        horizon_days=horizon,
        split_at=split_at,
        fitted_on=len(train),
        fitted_churns=sum(label for _, label in train),
        judged_on=len(later_new),
        proposed=proposed,
        old=judge(later_old, horizon, end),
        new=judge(later_new, horizon, end),
    )


def report(calibration: Calibration) -> dict[str, Any]:
    data = calibration.model_dump(mode="json")
    data["toml"] = calibration.toml
    return data
