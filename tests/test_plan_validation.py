"""Plan templates: what `tandem plans validate` accepts and refuses, naming the field."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from cli import app
from models.plan import PlanTemplate, ScoringSettings
from models.roles import Role
from models.tasks import describe_validation_error

# --------------------------------------------------------------------------- plan templates


def test_plan_template_defaults_are_valid() -> None:
    plan = PlanTemplate(name="default")
    assert plan.label == "default@v1"
    assert plan.onboarding.tutorials == []
    assert plan.required_tutorials() == []
    assert plan.renewal.term_days == 365
    assert plan.renewal.lead_days == 90
    assert plan.renewal.checkpoint_days == [180, 90]
    assert plan.reviews.checkin_every_days == 30
    assert plan.scoring.neutral_band == 0.1
    weights = plan.scoring.weights.model_dump()
    assert sum(weights.values()) == pytest.approx(1.0)
    # Round-trips through its own dump (how it travels into a workflow).
    assert PlanTemplate.model_validate(plan.model_dump(mode="json")) == plan


def test_plan_template_from_a_full_mapping() -> None:
    plan = PlanTemplate.model_validate(
        {
            "name": "enterprise",
            "version": 3,
            "onboarding": {
                "tutorials": [
                    {"key": "import", "title": "Import your contacts"},
                    {"key": "reports", "title": "Reports", "required": False},
                ],
                "nudge_after_days": 2,
            },
            "renewal": {"term_days": 730, "lead_days": 120, "checkpoint_days": [365, 180]},
            "playbooks": {"unhappy_unprofitable": {"title": "Assess", "requires_decision": True}},
        }
    )
    assert plan.label == "enterprise@v3"
    assert plan.required_tutorials() == ["import"]
    assert plan.playbooks.unhappy_unprofitable is not None
    assert plan.playbooks.unhappy_unprofitable.owner_role is Role.manager


@pytest.mark.parametrize(
    "data",
    [
        {"name": "p", "cadence": 30},
        {"name": "p", "onboarding": {"tutorial": []}},
        {"name": "p", "reviews": {"checkin_every_day": 7}},
        {"name": "p", "renewal": {"lead_day": 30}},
        {"name": "p", "scoring": {"weights": {"nps": 0.5, "happiness": 0.5}}},
        {"name": "p", "playbooks": {"sad_rich": {"title": "x"}}},
        {"name": "p", "onboarding": {"tutorials": [{"key": "a", "title": "A", "link": "x"}]}},
    ],
    ids=["top", "onboarding", "reviews", "renewal", "weights", "playbooks", "tutorial"],
)
def test_plan_template_rejects_unknown_keys(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PlanTemplate.model_validate(data)


@pytest.mark.parametrize("lead_days", [365, 366, 1000])
def test_lead_days_must_be_shorter_than_the_term(lead_days: int) -> None:
    with pytest.raises(ValidationError, match="lead_days must be shorter than term_days"):
        PlanTemplate.model_validate(
            {"name": "p", "renewal": {"term_days": 365, "lead_days": lead_days}}
        )


def test_lead_days_just_inside_the_term_is_accepted() -> None:
    plan = PlanTemplate.model_validate(
        {"name": "p", "renewal": {"term_days": 365, "lead_days": 364, "checkpoint_days": [30]}}
    )
    assert plan.renewal.lead_days == 364


def test_duplicate_tutorial_keys_are_rejected() -> None:
    tutorials = [
        {"key": "import", "title": "Import"},
        {"key": "pipeline", "title": "Pipeline"},
        {"key": "import", "title": "Import again"},
    ]
    with pytest.raises(ValidationError, match="tutorial keys must be unique, repeated: import"):
        PlanTemplate.model_validate({"name": "p", "onboarding": {"tutorials": tutorials}})


@pytest.mark.parametrize("checkpoints", [[0], [365], [400], [-5], [180, 365]])
def test_checkpoint_outside_the_term_is_rejected(checkpoints: list[int]) -> None:
    with pytest.raises(ValidationError, match="every checkpoint must fall inside the term"):
        PlanTemplate.model_validate(
            {"name": "p", "renewal": {"term_days": 365, "checkpoint_days": checkpoints}}
        )


def test_checkpoints_just_inside_the_term_are_accepted() -> None:
    plan = PlanTemplate.model_validate(
        {"name": "p", "renewal": {"term_days": 365, "checkpoint_days": [1, 364]}}
    )
    assert plan.renewal.checkpoint_days == [1, 364]


@pytest.mark.parametrize("role", ["admin", "boss"])
def test_a_playbook_task_is_a_reps_or_a_managers(role: str) -> None:
    """Tokens carry the admin role too (one Role for both); tasks do not."""
    playbook = {"title": "Call them", "owner_role": role}
    with pytest.raises(ValidationError, match=f"should be 'rep' or 'manager', not '{role}'"):
        PlanTemplate.model_validate({"name": "p", "playbooks": {"unhappy_profitable": playbook}})


def _counted_fields(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every count of days or hours in a plan (`due_days_before_term_end` too), by path."""
    for name, info in model.model_fields.items():
        inner = [a for a in (info.annotation, *get_args(info.annotation)) if isinstance(a, type)]
        nested = [a for a in inner if issubclass(a, BaseModel)]
        if nested:
            yield from _counted_fields(nested[0], f"{path}{name}.")
        elif info.annotation is int and ("_days" in name or "_hours" in name):
            yield f"{path}{name}", info


COUNTED = dict(_counted_fields(PlanTemplate))


def test_every_day_and_hour_count_has_an_upper_bound() -> None:
    """A typo (`window_days = 1000000`) overflows a date only once a lifecycle runs."""
    assert len(COUNTED) >= 15
    unbounded = [path for path, info in COUNTED.items() if not _bound(info)]
    assert unbounded == []


def _bound(info: FieldInfo) -> int | None:
    return next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)


@pytest.mark.parametrize("path", sorted(COUNTED))
def test_a_count_above_its_bound_is_refused_naming_it(path: str) -> None:
    bound = _bound(COUNTED[path])
    assert bound is not None and bound <= 3650 * 24
    *sections, field = path.split(".")
    data: dict[str, Any] = {field: bound + 1}
    for section in reversed(sections):
        data = {section: data}
    if sections[:1] == ["playbooks"]:
        data["playbooks"][sections[1]]["title"] = "Call"  # a playbook needs one
    with pytest.raises(ValidationError) as refused:
        PlanTemplate.model_validate({"name": "p", **data})
    message = f"{path}: Input should be less than or equal to {bound}"
    assert message in describe_validation_error(refused.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 10**20}, "version: Input should be less than or equal to 2147483647"),
        (
            {"onboarding": {"max_nudges": 10**9}},
            "onboarding.max_nudges: Input should be less than or equal to 20",
        ),
        (
            {"renewal": {"lead_days": 30, "due_days_before_term_end": 30}},
            "renewal: due_days_before_term_end must be shorter than lead_days",
        ),
        (
            {"renewal": {"term_days": 10**20}},
            "renewal.term_days: Input should be less than or equal to 3650",
        ),
    ],
)
def test_other_counts_out_of_range_are_refused_naming_them(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        PlanTemplate.model_validate({"name": "p", **data})
    assert message in describe_validation_error(refused.value)


def test_plan_name_must_be_a_slug() -> None:
    with pytest.raises(ValidationError):
        PlanTemplate(name="Not A Slug")


# --------------------------------------------------------------------------- bad plans


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[scoring.usage]\nmetrics = ["logins"]\nkey_features = ["exports"]\n',
            "scoring.usage: key_features: unknown metric 'exports'",
        ),
        (
            '[scoring.usage]\nkey_features = ["Exports!"]\n',
            "scoring.usage.key_features: 'Exports!' is not a metric name",
        ),
        (
            '[scoring.usage]\nmetrics = ["Reports Shared"]\n',
            "scoring.usage.metrics: 'Reports Shared' is not a metric name",
        ),
        ("[scoring.risk]\nhorizon_days = 6\n", "scoring.risk.horizon_days: Input should be"),
        (
            "[scoring.risk]\ncoefficients = { happiness = -1.0 }\n",
            "coefficients: unknown component 'happiness'",
        ),
        ('[scoring]\nrisk = "high"\n', "scoring.risk: Input should be"),
        ('[scoring.risk]\nat_risk = "sometimes"\n', "scoring.risk.at_risk: Input should be"),
    ],
)
def test_a_bad_scoring_section_is_refused_naming_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    plan = tmp_path / "bad.toml"
    plan.write_text('name = "x"\n' + text)
    done = CliRunner().invoke(app, ["plans", "validate", str(plan)])
    assert done.exit_code == 1 and message in done.output, done.output


def refusal(tmp_path: Path, text: str) -> str:
    """What `tandem plans validate` says of a plan refused (it must be refused)."""
    plan = tmp_path / "bad.toml"
    plan.write_text('name = "x"\n' + text)
    done = CliRunner().invoke(app, ["plans", "validate", str(plan)])
    assert done.exit_code == 1, done.output
    return done.output


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[scoring.weights]\nnps = inf\n", "scoring.weights.nps"),
        ("[scoring.cost]\nper_ticket = inf\n", "scoring.cost.per_ticket"),
        ("[scoring.cost]\nper_account_monthly = nan\n", "scoring.cost.per_account_monthly"),
        ("[scoring]\ntarget_margin = nan\n", "scoring.target_margin"),
        ("[scoring.risk]\nintercept = -inf\n", "scoring.risk.intercept"),
        ("[scoring.risk]\ncoefficients = { nps = nan }\n", "scoring.risk.coefficients.nps"),
    ],
)
def test_a_number_that_is_not_finite_is_refused(tmp_path: Path, text: str, field: str) -> None:
    """TOML has inf and nan; a score computed with one is nan."""
    assert f"{field}: Input should be a finite number" in refusal(tmp_path, text)


@pytest.mark.parametrize("days", ["100000000000000000000", "1000000", "3651"])
@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("scoring", "window_days"),
        ("scoring.usage", "recent_days"),
        ("scoring.usage", "baseline_days"),
    ],
)
def test_a_scoring_window_beyond_ten_years_is_refused(
    tmp_path: Path, section: str, field: str, days: str
) -> None:
    output = refusal(tmp_path, f"[{section}]\n{field} = {days}\n")
    assert f"{section}.{field}: Input should be less than or equal to 3650" in output


def test_weights_that_are_all_zero_are_refused(tmp_path: Path) -> None:
    """No weighted component, no customer score: every account would be `unknown`."""
    zeros = "".join(f"{name} = 0\n" for name in ScoringSettings().weights.model_dump())
    output = refusal(tmp_path, "[scoring.weights]\n" + zeros)
    assert "scoring.weights: at least one weight must be above 0" in output
    one = zeros.replace("nps = 0", "nps = 0.1")
    assert ScoringSettings.model_validate({"weights": tomllib.loads(one)}).weights.nps == 0.1


def test_a_negative_weight_is_refused(tmp_path: Path) -> None:
    output = refusal(tmp_path, "[scoring.weights]\ncsat = -0.1\n")
    assert "scoring.weights.csat: Input should be greater than or equal to 0" in output


@pytest.mark.parametrize("field", ["key_features", "metrics"])
def test_a_metric_listed_twice_is_refused(tmp_path: Path, field: str) -> None:
    """A key feature listed twice would count twice in breadth."""
    text = f'[scoring.usage]\n{field} = ["exports", "logins", "exports"]\n'
    output = refusal(tmp_path, text)
    assert f"scoring.usage.{field}: each metric once, repeated: exports" in output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scoring.risk]\nintercept = 1e300\n", "scoring.risk.intercept: Input should be less"),
        ("[scoring.risk]\ncustomer_slope = -1e6\n", "scoring.risk.customer_slope: Input should"),
        ("[scoring.risk]\ncoefficients = { nps = 500 }\n", "scoring.risk.coefficients.nps:"),
    ],
)
def test_a_log_odds_beyond_100_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """Past ±40 the risk is 0 or 1 already; huge terms add up to inf - inf = nan."""
    assert message in refusal(tmp_path, text)


def test_more_customer_signals_than_weighted_components_is_refused(tmp_path: Path) -> None:
    text = "[scoring]\nmin_customer_signals = 10\n[scoring.weights]\ncsat = 0\n"
    output = refusal(tmp_path, text)
    assert "scoring: min_customer_signals: 10 is more than the 9 weighted" in output
    assert ScoringSettings(min_customer_signals=10).min_customer_signals == 10
