"""Scoring: the success quadrant, its components and the churn risk (docs/scoring.md)."""

from models.scoring.assessment import (
    UNHAPPY,
    Assessment,
    Explained,
    PreviousAssessment,
    Quadrant,
    Risk,
    assess,
)
from models.scoring.components import goal_progress
from models.scoring.risk import churn_risk, over_horizon
from models.scoring.usage import peer_levels

__all__ = [
    "UNHAPPY",
    "Assessment",
    "Explained",
    "PreviousAssessment",
    "Quadrant",
    "Risk",
    "assess",
    "churn_risk",
    "goal_progress",
    "over_horizon",
    "peer_levels",
]
