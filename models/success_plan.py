"""The customer's own definition of success (DOMAIN.md §1-2)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.signals import Figure


class Direction(StrEnum):
    increase = "increase"
    decrease = "decrease"


class Goal(BaseModel):
    """One measurable outcome the customer wants, in their terms."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="short id, e.g. active_reps")
    metric: str = Field(min_length=1, description="what is measured, in the customer's words")
    unit: str = ""
    baseline: Figure
    target: Figure
    direction: Direction = Direction.increase
    target_date: date

    @model_validator(mode="after")
    def _target_moves_the_right_way(self) -> Goal:
        if self.direction is Direction.increase and self.target <= self.baseline:
            raise ValueError(f"goal {self.key}: target must be above baseline for 'increase'")
        if self.direction is Direction.decrease and self.target >= self.baseline:
            raise ValueError(f"goal {self.key}: target must be below baseline for 'decrease'")
        return self

    def progress(self, current: float) -> float:
        """Share of the way from baseline to target (0 = baseline, 1 = reached)."""
        return (current - self.baseline) / (self.target - self.baseline)


class SuccessPlan(BaseModel):
    """Captured at kickoff, revised at reviews and renewals."""

    model_config = ConfigDict(extra="forbid")

    intended_use: str = Field(min_length=1, description="how the customer means to use us")
    success_definition: str = Field(
        min_length=1, description="what success means to them, in their own words"
    )
    goals: list[Goal] = Field(min_length=1)
    objectives: list[str] = Field(default_factory=list)
    constraints: list[str] = Field(
        default_factory=list, description="e.g. how they must roll out to their own users"
    )

    @model_validator(mode="after")
    def _unique_goal_keys(self) -> SuccessPlan:
        keys = [g.key for g in self.goals]
        if len(keys) != len(set(keys)):
            raise ValueError("goal keys must be unique")
        return self

    def goal(self, key: str) -> Goal | None:
        return next((g for g in self.goals if g.key == key), None)


class CustomerPlanEdit(BaseModel):
    """What the customer writes on their own success-plan page, in their own words.
    Recorded as the customer's version beside the manager's; goals stay the manager's."""

    model_config = ConfigDict(extra="forbid")

    success_definition: str = Field(min_length=3, max_length=4000)
    intended_use: str = Field(default="", max_length=4000)
    objectives: list[str] = Field(default_factory=list, max_length=20)
    constraints: list[str] = Field(default_factory=list, max_length=20)
    author: str = Field(default="customer", max_length=200)

    @model_validator(mode="after")
    def _tidy(self) -> CustomerPlanEdit:
        self.success_definition = self.success_definition.strip()
        if len(self.success_definition) < 3:
            raise ValueError("success_definition: please say in a few words what success means")
        self.objectives = [o.strip() for o in self.objectives if o.strip()]
        self.constraints = [c.strip() for c in self.constraints if c.strip()]
        return self
