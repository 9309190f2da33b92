"""How well a scoring anticipated the churn that really happened, per horizon: the
figures `tandem backtest` and `tandem calibrate` both report (docs/scoring.md says how to
read them).

Each scored assessment is one row; its label is whether the account churned within the
horizon after it. A row whose horizon reaches past the end of the records without a
churn is left out: nobody knows yet whether that account will churn in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sklearn.metrics import brier_score_loss, roc_auc_score

from models.scoring import over_horizon

DEFAULT_HORIZONS = (30, 60, 90)
# Below these, an AUC or a lift moves by a tenth when one account changes side: too few
# to fit weights on (calibrate refuses) or to judge a scoring by (a caution says so).
MIN_CHURNS = 30  # accounts that churned within the horizon after an assessment
MIN_ASSESSMENTS = 100  # assessments whose outcome is known


@dataclass(frozen=True)
class Scored:
    """One assessment as a scoring saw it, and when (if ever) the account churned."""

    customer_id: str
    assessed_at: datetime
    components: dict[str, float]
    churn_risk: float | None
    risk_horizon_days: int
    level: float | None
    at_risk: bool
    churned_at: datetime | None

    def churned_within(self, days: int, history_end: datetime) -> bool | None:
        end = self.assessed_at + timedelta(days=days)
        if self.churned_at is not None and self.assessed_at < self.churned_at <= end:
            return True
        if end > history_end:
            return None  # not known yet
        return False


class Judgement(BaseModel):
    horizon_days: int
    assessments: int
    churned: int  # assessments followed by a churn within the horizon
    churned_accounts: int  # the accounts behind them
    base_rate: float | None
    auc_churn_risk: float | None
    auc_minus_level: float | None
    at_risk_flagged: int
    precision: float | None
    recall: float | None
    lift: float | None
    top_decile_lift: float | None
    brier: float | None
    caution: str | None = None  # set when the figures rest on too few churns or assessments


def caution(horizon_days: int, assessments: int, churned_accounts: int) -> str | None:
    """Why figures on this few outcomes should not be trusted, or None."""
    few = []
    if churned_accounts < MIN_CHURNS:
        few.append(f"{churned_accounts} churned account(s) (fewer than {MIN_CHURNS})")
    if assessments < MIN_ASSESSMENTS:
        few.append(f"{assessments} assessment(s) (fewer than {MIN_ASSESSMENTS})")
    if not few:
        return None
    return (
        f"{horizon_days} d: these figures rest on {' and '.join(few)} whose outcome is known; "
        "one account more or less can swing them, so read them as anecdote, not evidence"
    )


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def judge(rows: list[Scored], horizon_days: int, history_end: datetime) -> Judgement:
    labelled = [
        (r, label)
        for r in rows
        if r.churn_risk is not None
        and (label := r.churned_within(horizon_days, history_end)) is not None
    ]
    y = [int(label) for _, label in labelled]
    risk = [
        over_horizon(r.churn_risk or 0.0, r.risk_horizon_days, horizon_days) for r, _ in labelled
    ]
    # An assessment without a level (an axis unknown) sits at the neutral point.
    minus_level = [-(r.level if r.level is not None else 0.0) for r, _ in labelled]
    churned = sum(y)
    churned_accounts = len({r.customer_id for r, label in labelled if label})
    both = 0 < churned < len(y)
    flagged = [label for r, label in labelled if r.at_risk]
    base = _ratio(churned, len(y))
    precision = _ratio(sum(flagged), len(flagged))
    top = sorted(zip(risk, y, strict=True), key=lambda p: -p[0])[: max(1, len(y) // 10)]
    top_rate = _ratio(sum(label for _, label in top), len(top)) if y else None
    return Judgement(
        horizon_days=horizon_days,
        assessments=len(y),
        churned=churned,
        churned_accounts=churned_accounts,
        base_rate=base,
        auc_churn_risk=float(roc_auc_score(y, risk)) if both else None,
        auc_minus_level=float(roc_auc_score(y, minus_level)) if both else None,
        at_risk_flagged=len(flagged),
        precision=precision,
        recall=_ratio(sum(flagged), churned),
        lift=precision / base if precision is not None and base else None,
        top_decile_lift=top_rate / base if top_rate is not None and base else None,
        brier=float(brier_score_loss(y, risk)) if y else None,
        caution=caution(horizon_days, len(y), churned_accounts),
    )


def judge_all(rows: list[Scored], horizons: list[int], history_end: datetime) -> list[Judgement]:
    return [judge(rows, h, history_end) for h in horizons]
