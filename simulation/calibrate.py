"""`tandem calibrate`: fit the churn-risk mapping and the weights to the churn a team
really had, and judge the fit on a later period than the one it was fitted on.

Every recorded assessment is re-scored with the plan (simulation/backtest.py); its
components are the features, and whether the account churned within the horizon after
it is the label. The records are split in time, never shuffled: the fit sees only the
assessments whose horizon had ended by the split (their outcome was known then), and
the judgement reads the assessments after it. The model is a logistic regression with
an L2 penalty (scikit-learn): its coefficients are the plan's `[scoring.risk]`
coefficients as they are, so the plan applies the fitted model without scikit-learn.

The proposal is recommended only if, on the later period, it ranks churn at least as
well as the plan's scoring (ROC AUC of churn_risk) and its risk is at least as close to
what happened (Brier score), and is better on one of them (`verdict`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import tomli_w
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sqlalchemy import Engine

from models.plan import COMPONENTS, CustomerWeights, RiskSettings, ScoringSettings
from simulation.backtest import load, rescore, scored, usage_warnings
from simulation.judgement import MIN_CHURNS, Judgement, Scored, judge

TRAIN_SHARE = 0.6  # of the labelled assessments, in time order, before the split
FEATURES = sorted(COMPONENTS)


class TooLittleHistory(ValueError):
    """The records hold too few churns to fit anything that generalises."""


class Calibration(BaseModel):
    horizon_days: int
    split_at: datetime
    fitted_on: int  # assessments
    fitted_churns: int  # fitted assessments followed by a churn within the horizon
    fitted_churned_accounts: int
    judged_on: int
    proposed: ScoringSettings
    old: Judgement
    new: Judgement
    recommended: bool
    verdict: str
    warnings: list[str] = []

    @property
    def toml(self) -> str:
        return scoring_toml(self.proposed)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def scoring_toml(scoring: ScoringSettings) -> str:
    """The `[scoring]` section of a plan file, as `tandem plans validate` reads it."""
    return tomli_w.dumps({"scoring": scoring.model_dump(mode="json")})


def verdict(old: Judgement, new: Judgement) -> tuple[bool, str]:
    """Whether the proposal (new) beats the plan's scoring (old) on the later period, and
    why. Ranking (AUC) decides who is flagged and Brier whether the risk can be read as a
    probability (the renewal forecast does): a proposal worse at either costs more than
    it gains, and one no better is not worth the change."""
    keep = "Keep the plan's current scoring."
    if None in (old.auc_churn_risk, new.auc_churn_risk, old.brier, new.brier):
        return False, (
            "Not recommended: the later period has no churn, or nothing but churn, to "
            f"judge the proposal by. {keep}"
        )
    assert old.auc_churn_risk is not None and new.auc_churn_risk is not None
    assert old.brier is not None and new.brier is not None
    auc = f"AUC of churn_risk {new.auc_churn_risk:.3f} against {old.auc_churn_risk:.3f}"
    brier = f"Brier {new.brier:.3f} against {old.brier:.3f}"
    worse = []
    if new.auc_churn_risk < old.auc_churn_risk:
        worse.append(f"it ranks churn worse ({auc})")
    if new.brier > old.brier:
        worse.append(f"its risk is further from what happened ({brier})")
    if worse:
        return False, (
            "Not recommended: on the later period the proposal does worse than the plan's "
            f"scoring: {' and '.join(worse)}. {keep}"
        )
    if new.auc_churn_risk == old.auc_churn_risk and new.brier == old.brier:
        return False, (
            f"Not recommended: on the later period the proposal does no better than the "
            f"plan's scoring ({auc}; {brier}). {keep}"
        )
    return True, (
        "Recommended: on the later period the proposal ranks churn at least as well and "
        f"its risk is at least as close to what happened ({auc}; {brier})."
    )


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


def split(
    rows: list[Scored], horizon: int, end: datetime
) -> tuple[datetime | None, list[tuple[Scored, bool]]]:
    """The split time (None without a labelled assessment) and the rows to fit on."""
    labelled = sorted(_labelled(rows, horizon, end), key=lambda p: p[0].assessed_at)
    if not labelled:
        return None, []
    split_at = labelled[int(len(labelled) * TRAIN_SHARE)][0].assessed_at
    # Fitted only on what was known at the split: the assessment and its whole horizon.
    train = [
        (r, label) for r, label in labelled if r.assessed_at + timedelta(days=horizon) <= split_at
    ]
    return split_at, train


def fit(
    train: list[tuple[Scored, bool]], scoring: ScoringSettings, horizon: int
) -> ScoringSettings:
    """The proposed scoring, fitted on these labelled rows."""
    labels = [label for _, label in train]
    if sum(labels) == 0 or all(labels):
        raise TooLittleHistory(
            f"no churn (or nothing but churn) within {horizon} days among the "
            f"{len(train)} assessments to fit on: nothing to fit"
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
    return ScoringSettings.model_validate(proposed.model_dump())


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
    split_at, train = split(old_rows, horizon, end) if end else (None, [])
    # What the fit can learn from: accounts with a positive label among the fitted rows,
    # not every churn on record (one too soon or too late for the horizon teaches nothing).
    churners = {r.customer_id for r, label in train if label}
    if len(churners) < min_churns or split_at is None or end is None:
        period = (
            f"the fitting period (assessments before {split_at:%Y-%m-%d} whose {horizon} "
            "days had ended by then)"
            if split_at
            else "the records (no assessment whose outcome is known)"
        )
        raise TooLittleHistory(
            f"calibrate needs at least {min_churns} accounts that churned within {horizon} "
            f"days of an assessment in {period}; there are {len(churners)} "
            f"({sum(label for _, label in train)} of its {_count(len(train), 'assessment')} "
            f"followed by such a churn). The records hold "
            f"{_count(len(records.customers), 'account')}, "
            f"{_count(len(records.assessments), 'assessment')} and "
            f"{_count(len(records.churned_at), 'churn')} in all: the fit needs more history "
            "(more accounts, or a longer record), or a shorter --horizon-days."
        )
    proposed = fit(train, scoring, horizon)
    new_rows = scored(records, rescore(records, proposed))
    later_old = [r for r in old_rows if r.assessed_at > split_at]
    later_new = [r for r in new_rows if r.assessed_at > split_at]
    old, new = judge(later_old, horizon, end), judge(later_new, horizon, end)
    recommended, why = verdict(old, new)
    return Calibration(
        horizon_days=horizon,
        split_at=split_at,
        fitted_on=len(train),
        fitted_churns=sum(label for _, label in train),
        fitted_churned_accounts=len(churners),
        judged_on=len(later_new),
        proposed=proposed,
        old=old,
        new=new,
        recommended=recommended,
        verdict=why,
        warnings=usage_warnings(records, scoring),
    )


def report(calibration: Calibration) -> dict[str, Any]:
    data = calibration.model_dump(mode="json")
    data["toml"] = calibration.toml
    return data
