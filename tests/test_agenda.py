"""A term's agenda (workflows/agenda.py): every dated step, computed from the plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.customer import CustomerProfile
from models.lifecycle import LifecycleState, Step, StepKind
from models.plan import PlanTemplate
from workflows.agenda import next_step, term_agenda

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
END = START + timedelta(days=365)
DAY = timedelta(days=1)

CUSTOMER = CustomerProfile(
    customer_id="acme-corp-1a2b3c",
    company="Acme Corp",
    contact_name="Jane Doe",
    email="jane@acme.com",
)

TUTORIALS = [
    {"key": "import", "title": "Import your contacts"},
    {"key": "pipeline", "title": "Build your first pipeline"},
]


def make_plan(**sections: Any) -> PlanTemplate:
    data: dict[str, Any] = {"name": "starter", "onboarding": {"tutorials": TUTORIALS}}
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return PlanTemplate.model_validate(data)


def make_state(
    plan: PlanTemplate | None = None,
    term: int = 1,
    start: datetime = START,
    end: datetime = END,
    steps_done: list[str] | None = None,
) -> LifecycleState:
    return LifecycleState(
        customer=CUSTOMER,
        plan=plan or make_plan(),
        signed_up_at=START,
        term=term,
        term_start=start,
        term_end=end,
        steps_done=steps_done or [],
    )


def of_kind(steps: list[Step], kind: StepKind) -> list[Step]:
    return [s for s in steps if s.kind is kind]


def by_key(steps: list[Step]) -> dict[str, Step]:
    return {s.key: s for s in steps}


# --------------------------------------------------------------------------- term 1


def test_first_term_starts_with_the_welcome_alone() -> None:
    """One step and one email at sign-up: the welcome invites to the tutorials and opens
    the kickoff; the nudges for tutorials not done stay."""
    steps = term_agenda(make_state())
    assert [(s.key, s.kind, s.at) for s in steps if s.at == START] == [
        ("welcome", StepKind.welcome, START)
    ]
    assert len(of_kind(steps, StepKind.tutorial_nudge)) == 2


def test_nudges_at_multiples_of_nudge_after_days() -> None:
    # defaults: nudge_after_days 3, max_nudges 2
    steps = term_agenda(make_state())
    nudges = of_kind(steps, StepKind.tutorial_nudge)
    assert [(s.key, s.at) for s in nudges] == [
        ("tutorial_nudge-1", START + 3 * DAY),
        ("tutorial_nudge-2", START + 6 * DAY),
    ]


def test_nudge_settings_come_from_the_plan() -> None:
    plan = make_plan(onboarding={"nudge_after_days": 5, "max_nudges": 3})
    nudges = of_kind(term_agenda(make_state(plan)), StepKind.tutorial_nudge)
    assert [s.at for s in nudges] == [START + 5 * DAY, START + 10 * DAY, START + 15 * DAY]


def test_no_nudges_when_max_nudges_is_zero() -> None:
    plan = make_plan(onboarding={"max_nudges": 0})
    steps = term_agenda(make_state(plan))
    assert of_kind(steps, StepKind.tutorial_nudge) == []
    assert "welcome" in by_key(steps)


def test_no_tutorials_means_no_nudges() -> None:
    plan = PlanTemplate(name="bare")
    steps = term_agenda(make_state(plan))
    assert of_kind(steps, StepKind.tutorial_nudge) == []
    assert [(s.key, s.at) for s in steps[:1]] == [("welcome", START)]
    assert steps[1].kind is StepKind.check_in


def test_check_ins_every_30_days_strictly_before_the_end() -> None:
    check_ins = of_kind(term_agenda(make_state()), StepKind.check_in)
    # 30, 60, ..., 360 (390 > 365)
    assert [(s.key, s.at) for s in check_ins] == [
        (f"check_in-{n}", START + 30 * n * DAY) for n in range(1, 13)
    ]


def test_no_check_in_on_the_term_end_itself() -> None:
    # 73 * 5 == 365: the fifth check-in would fall on the term end and is left out.
    plan = make_plan(reviews={"checkin_every_days": 73})
    check_ins = of_kind(term_agenda(make_state(plan)), StepKind.check_in)
    assert [s.at for s in check_ins] == [START + 73 * n * DAY for n in range(1, 5)]
    assert all(s.at < END for s in check_ins)


def test_review_calls_stop_before_the_renewal_opens() -> None:
    # renewal opens at END - 90 = START + 275; calls at 90, 180, 270
    steps = term_agenda(make_state())
    calls = of_kind(steps, StepKind.review_call)
    assert [(s.key, s.at) for s in calls] == [
        ("review_call-1", START + 90 * DAY),
        ("review_call-2", START + 180 * DAY),
        ("review_call-3", START + 270 * DAY),
    ]
    assert all(s.at < END - 90 * DAY for s in calls)


def test_no_review_call_on_the_day_the_renewal_opens() -> None:
    # lead 95 -> renewal opens at START + 270, exactly the third call: it is left out.
    plan = make_plan(renewal={"lead_days": 95})
    calls = of_kind(term_agenda(make_state(plan)), StepKind.review_call)
    assert [s.at for s in calls] == [START + 90 * DAY, START + 180 * DAY]


def test_renewal_checkpoints_at_180_and_90_days_before_the_end() -> None:
    checkpoints = of_kind(term_agenda(make_state()), StepKind.renewal_checkpoint)
    assert [(s.key, s.at) for s in checkpoints] == [
        ("renewal_checkpoint-180d", END - 180 * DAY),
        ("renewal_checkpoint-90d", END - 90 * DAY),
    ]


def test_renewal_opens_lead_days_before_the_end() -> None:
    steps = term_agenda(make_state())
    renewal = of_kind(steps, StepKind.renewal)
    assert [(s.key, s.at) for s in renewal] == [("renewal", END - 90 * DAY)]

    plan = make_plan(renewal={"lead_days": 60, "checkpoint_days": [120]})
    steps = term_agenda(make_state(plan))
    assert by_key(steps)["renewal"].at == END - 60 * DAY
    assert by_key(steps)["renewal_checkpoint-120d"].at == END - 120 * DAY


def test_checkpoint_on_the_renewal_day_comes_before_the_renewal() -> None:
    # Default checkpoint at 90 days == default lead_days: same time, checkpoint first.
    steps = term_agenda(make_state())
    keys = [s.key for s in steps]
    assert keys.index("renewal_checkpoint-90d") < keys.index("renewal")


def test_steps_are_sorted_by_time() -> None:
    steps = term_agenda(make_state())
    times = [s.at for s in steps]
    assert times == sorted(times)
    assert (steps[-1].key, steps[-1].at) == ("check_in-12", START + 360 * DAY)


def test_keys_are_unique() -> None:
    for state in (make_state(), make_state(term=2, start=END, end=END + 365 * DAY)):
        keys = [s.key for s in term_agenda(state)]
        assert len(keys) == len(set(keys))


def test_all_steps_fall_inside_the_term() -> None:
    for s in term_agenda(make_state()):
        assert START <= s.at < END, s


def test_whole_first_term_agenda() -> None:
    steps = term_agenda(make_state())
    expected_counts = {
        StepKind.welcome: 1,
        StepKind.tutorial_nudge: 2,
        StepKind.check_in: 12,
        StepKind.review_call: 3,
        StepKind.renewal_checkpoint: 2,
        StepKind.renewal: 1,
        StepKind.imported: 0,
    }
    assert {kind: len(of_kind(steps, kind)) for kind in StepKind} == expected_counts
    assert len(steps) == sum(expected_counts.values())


# --------------------------------------------------------------------------- term 2


def test_second_term_has_no_onboarding_steps() -> None:
    start2, end2 = END, END + 365 * DAY
    steps = term_agenda(make_state(term=2, start=start2, end=end2))
    kinds = {s.kind for s in steps}
    assert not kinds & {
        StepKind.welcome,
        StepKind.tutorial_nudge,
    }
    assert steps[0].key == "check_in-1"
    assert steps[0].at == start2 + 30 * DAY
    assert by_key(steps)["renewal"].at == end2 - 90 * DAY
    assert by_key(steps)["renewal_checkpoint-180d"].at == end2 - 180 * DAY
    assert len(of_kind(steps, StepKind.review_call)) == 3


def test_checkpoint_before_a_short_term_start_is_dropped() -> None:
    # A 100-day term: the 180-day checkpoint would fall before the start.
    steps = term_agenda(make_state(term=2, start=END, end=END + 100 * DAY))
    checkpoints = of_kind(steps, StepKind.renewal_checkpoint)
    assert [s.key for s in checkpoints] == ["renewal_checkpoint-90d"]
    assert checkpoints[0].at == END + 10 * DAY


# --------------------------------------------------------------------------- next_step


def test_next_step_is_the_first_step_when_nothing_is_done() -> None:
    step = next_step(make_state())
    assert step is not None
    assert (step.key, step.at) == ("welcome", START)


def test_next_step_skips_steps_done() -> None:
    step = next_step(make_state(steps_done=["welcome"]))
    assert step is not None
    assert (step.key, step.at) == ("tutorial_nudge-1", START + 3 * DAY)


def test_next_step_skips_done_steps_out_of_order() -> None:
    # A step done early does not hide an earlier one still to do.
    step = next_step(make_state(steps_done=["welcome", "tutorial_nudge-1", "check_in-1"]))
    assert step is not None and step.key == "tutorial_nudge-2"


def test_next_step_is_none_when_everything_is_done() -> None:
    keys = [s.key for s in term_agenda(make_state())]
    assert next_step(make_state(steps_done=keys)) is None


@pytest.mark.parametrize("extra_done", [["renewal"], ["check_in-99"], ["unknown"]])
def test_unrelated_done_keys_do_not_change_the_next_step(extra_done: list[str]) -> None:
    state = make_state(steps_done=["welcome", *extra_done])
    step = next_step(state)
    assert step is not None and step.key == "tutorial_nudge-1"


@pytest.mark.parametrize("days_in", [200, 300, 364])
def test_an_imported_term_picks_up_from_the_day_of_the_import(days_in: int) -> None:
    today = START + timedelta(days=days_in)
    state = make_state().model_copy(update={"imported_at": today})
    steps = term_agenda(state)
    assert steps[0].key == "imported" and steps[0].at == today
    assert all(s.at >= today for s in steps)
    kinds = {s.kind for s in steps}
    assert StepKind.welcome not in kinds and StepKind.tutorial_nudge not in kinds
    # The renewal conversation: at its date, or at once when that date has passed.
    (renewal,) = of_kind(steps, StepKind.renewal)
    assert renewal.at == max(END - timedelta(days=90), today)
    # The check-ins keep their dates and keys: every 30 days from the term's start.
    for step in of_kind(steps, StepKind.check_in):
        n = int(step.key.rsplit("-", 1)[1])
        assert step.at == START + timedelta(days=30 * n)
    # A second term is a plain one.
    later = state.model_copy(update={"term": 2})
    assert "imported" not in {s.key for s in term_agenda(later)}
