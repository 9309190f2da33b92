"""Task results, signal ranges and sign-ups: the validation at the edges (plan templates:
tests/test_plan_validation.py)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from models.customer import CUSTOMER_ID_PATTERN, CustomerProfile, SignUp
from models.roles import Role
from models.scoring import Quadrant
from models.signals import SignalIn, SignalKind
from models.tasks import (
    RESULT_MODELS,
    Decision,
    InvalidTaskResult,
    KickoffResult,
    PlaybookResult,
    RenewalCheckpointResult,
    Task,
    TaskCompletion,
    TaskKey,
    TaskKind,
    TaskStatus,
    check_result,
    example_result,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

# --------------------------------------------------------------------------- check_result


def make_task(
    kind: TaskKind = TaskKind.kickoff,
    status: TaskStatus = TaskStatus.open,
    requires_decision: bool = False,
) -> Task:
    return Task(
        task_id="t-1",
        customer_id="acme-corp-1a2b3c",
        kind=kind,
        title=f"{kind.value} for Acme",
        owner_role=Role.manager,
        due_at=NOW + timedelta(days=7),
        created_at=NOW,
        status=status,
        playbook="unhappy_unprofitable" if kind is TaskKind.playbook else None,
        requires_decision=requires_decision,
    )


def complete(result: dict[str, Any], task_id: str = "t-1") -> TaskCompletion:
    return TaskCompletion(task_id=task_id, completed_by="jane", result=result)


def kickoff_result(**goal_overrides: Any) -> dict[str, Any]:
    result = example_result(TaskKind.kickoff)
    result["success_plan"]["goals"][0].update(goal_overrides)
    return result


def test_unknown_task_is_refused() -> None:
    with pytest.raises(InvalidTaskResult, match=r"unknown task 't-404'"):
        check_result(None, complete(example_result(TaskKind.kickoff), "t-404"), "t-404")


@pytest.mark.parametrize("status", [TaskStatus.done, TaskStatus.cancelled])
def test_task_that_is_not_open_is_refused(status: TaskStatus) -> None:
    task = make_task(status=status)
    with pytest.raises(InvalidTaskResult, match=f"task t-1 is not open \\(it is {status.value}\\)"):
        check_result(task, complete(example_result(TaskKind.kickoff)), "t-1")


def test_wrong_kind_is_refused() -> None:
    task = make_task(TaskKind.kickoff)
    with pytest.raises(InvalidTaskResult, match="wrong kind") as caught:
        check_result(task, complete(example_result(TaskKind.review_call)), "t-1")
    message = str(caught.value)
    assert "kickoff task" in message
    assert "'review_call'" in message


def test_missing_field_is_refused_with_its_name() -> None:
    task = make_task(TaskKind.kickoff)
    with pytest.raises(InvalidTaskResult) as caught:
        check_result(task, complete({"notes": "Kickoff held"}), "t-1")
    message = str(caught.value)
    assert "success_plan" in message
    assert "Field required" in message
    assert message.startswith("result.")


def test_invalid_goal_is_refused_naming_the_goal() -> None:
    task = make_task(TaskKind.kickoff)
    # 'increase' with the target below the baseline
    result = kickoff_result(baseline=12, target=2)
    with pytest.raises(InvalidTaskResult) as caught:
        check_result(task, complete(result), "t-1")
    message = str(caught.value)
    assert "goal active_reps" in message
    assert "target must be above baseline for 'increase'" in message
    assert "goals.0" in message


def test_invalid_decrease_goal_is_refused_naming_the_goal() -> None:
    task = make_task(TaskKind.kickoff)
    result = kickoff_result(key="response_hours", baseline=24, target=48, direction="decrease")
    with pytest.raises(InvalidTaskResult, match="goal response_hours: target must be below"):
        check_result(task, complete(result), "t-1")


@pytest.mark.parametrize(
    ("kind", "result", "path"),
    [
        (TaskKind.kickoff, {"notes": "Kickoff held"}, "result.success_plan: Field required"),
        (TaskKind.kickoff, kickoff_result(baseline=12, target=2), "result.success_plan.goals.0:"),
        (TaskKind.playbook, {"decision": "recover"}, "result.notes: Field required"),
        (TaskKind.renewal, {"outcome": "renewed", "reason": "ok", "extra": 1}, "result.extra:"),
        # Figures go into scoring as goal signals: finite and of a real size, as signals.
        (
            TaskKind.review_call,
            {"notes": "Call held", "goal_progress": {"active_reps": float("nan")}},
            "result.goal_progress.active_reps: Input should be a finite number",
        ),
        (
            TaskKind.kickoff,
            kickoff_result(baseline=1, target=1e13),
            "result.success_plan.goals.0.target: Input should be less than or equal to",
        ),
    ],
    ids=["missing-plan", "bad-goal", "missing-notes", "extra-key", "nan-progress", "huge-target"],
)
def test_error_message_names_the_exact_field_path(
    kind: TaskKind, result: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidTaskResult) as caught:
        check_result(make_task(kind), complete(result), "t-1")
    message = str(caught.value)
    assert path in message
    assert f"result.{kind.value}." not in message


def test_playbook_requiring_a_decision_needs_one() -> None:
    task = make_task(TaskKind.playbook, requires_decision=True)
    with pytest.raises(InvalidTaskResult, match=r"result\.decision: .*recover or let_go"):
        check_result(task, complete({"kind": "playbook", "notes": "Call held"}), "t-1")


@pytest.mark.parametrize("decision", ["recover", "let_go"])
def test_playbook_requiring_a_decision_accepts_one(decision: str) -> None:
    task = make_task(TaskKind.playbook, requires_decision=True)
    result = check_result(task, complete({"notes": "Call held", "decision": decision}), "t-1")
    assert isinstance(result, PlaybookResult)
    assert result.decision is Decision(decision)


def test_playbook_without_decision_is_fine_when_not_required() -> None:
    task = make_task(TaskKind.playbook, requires_decision=False)
    result = check_result(task, complete({"notes": "Call held"}), "t-1")
    assert isinstance(result, PlaybookResult)
    assert result.decision is None


def test_invalid_decision_value_is_refused() -> None:
    task = make_task(TaskKind.playbook, requires_decision=True)
    with pytest.raises(InvalidTaskResult, match="decision"):
        check_result(task, complete({"notes": "Call held", "decision": "maybe"}), "t-1")


@pytest.mark.parametrize("kind", list(TaskKind))
def test_example_result_for_every_kind_is_valid(kind: TaskKind) -> None:
    task = make_task(kind, requires_decision=kind is TaskKind.playbook)
    example = example_result(kind)
    result = check_result(task, complete(example), "t-1")
    assert isinstance(result, RESULT_MODELS[kind])
    assert result.kind == kind.value


@pytest.mark.parametrize("kind", list(TaskKind))
def test_kind_may_be_left_out_of_the_result(kind: TaskKind) -> None:
    task = make_task(kind)
    raw = {k: v for k, v in example_result(kind).items() if k != "kind"}
    completion = complete(raw)
    result = check_result(task, completion, "t-1")
    assert isinstance(result, RESULT_MODELS[kind])
    assert "kind" not in completion.result  # the caller's mapping is not modified


def test_kickoff_result_carries_the_success_plan() -> None:
    result = check_result(make_task(TaskKind.kickoff), complete(kickoff_result()), "t-1")
    assert isinstance(result, KickoffResult)
    goal = result.success_plan.goal("active_reps")
    assert goal is not None
    assert (goal.baseline, goal.target) == (2, 12)
    assert result.success_plan.constraints == ["Roll out one sales team at a time"]


def test_checkpoint_rating_is_a_quadrant() -> None:
    task = make_task(TaskKind.renewal_checkpoint)
    ok = check_result(task, complete({"manager_rating": "neutral"}), "t-1")
    assert isinstance(ok, RenewalCheckpointResult)
    assert ok.manager_rating is Quadrant.neutral
    with pytest.raises(InvalidTaskResult, match="manager_rating"):
        check_result(task, complete({"manager_rating": "delighted"}), "t-1")


# --------------------------------------------------------------------------- signals


def signal(kind: str, value: float, goal_key: str | None = None) -> SignalIn:
    return SignalIn(
        customer_id="acme-corp-1a2b3c",
        kind=SignalKind(kind),
        value=value,
        observed_at=NOW,
        goal_key=goal_key,
    )


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("nps", 11, "nps must be between 0 and 10, got 11"),
        ("nps", -1, "nps must be between 0 and 10"),
        ("csat", 0, "csat must be between 1 and 5, got 0"),
        ("csat", 6, "csat must be between 1 and 5"),
        ("fcr", 1.5, "fcr must be between 0 and 1, got 1.5"),
        ("fcr", -0.1, "fcr must be between 0 and 1"),
        ("usage", -3, "usage must be at least 0"),
        ("revenue", -100, "revenue must be at least 0"),
        ("cost", -1, "cost must be at least 0"),
    ],
)
def test_signal_out_of_range_is_rejected(kind: str, value: float, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        signal(kind, value)


@pytest.mark.parametrize(
    ("kind", "value"),
    [("nps", 0), ("nps", 10), ("csat", 1), ("csat", 5), ("fcr", 0), ("fcr", 1), ("usage", 0)],
)
def test_signal_range_bounds_are_inclusive(kind: str, value: float) -> None:
    assert signal(kind, value).value == value


def test_goal_signal_needs_a_goal_key() -> None:
    with pytest.raises(ValidationError, match="a goal signal needs goal_key"):
        signal("goal", 7)
    with pytest.raises(ValidationError, match="a goal signal needs goal_key"):
        signal("goal", 7, goal_key="")
    assert signal("goal", -40, goal_key="active_reps").goal_key == "active_reps"


def test_goal_key_only_goes_with_goal_signals() -> None:
    with pytest.raises(ValidationError, match="goal_key only goes with kind 'goal', not 'nps'"):
        signal("nps", 9, goal_key="active_reps")


@pytest.mark.parametrize(
    ("kind", "value", "goal_key"),
    [
        ("nps", float("nan"), None),
        ("fcr", float("nan"), None),
        ("revenue", float("inf"), None),
        ("goal", float("nan"), "active_reps"),
    ],
    ids=["nps-nan", "fcr-nan", "revenue-inf", "goal-nan"],
)
def test_non_finite_signal_is_rejected(kind: str, value: float, goal_key: str | None) -> None:
    with pytest.raises(ValidationError):
        signal(kind, value, goal_key=goal_key)


# --------------------------------------------------------------------------- sign-ups


def sign_up(**overrides: Any) -> SignUp:
    data: dict[str, Any] = {
        "company": "Acme Corp",
        "contact_name": "Jane Doe",
        "email": "jane@acme.com",
    }
    data.update(overrides)
    return SignUp(**data)


@pytest.mark.parametrize("email", ["not-an-email", "jane@", "@acme.com", "jane acme.com", ""])
def test_invalid_email_is_rejected(email: str) -> None:
    with pytest.raises(ValidationError, match="email"):
        sign_up(email=email)


@pytest.mark.parametrize("company", ["", "   ", "\t\n"])
def test_blank_company_is_rejected(company: str) -> None:
    with pytest.raises(ValidationError, match="company"):
        sign_up(company=company)


def test_blank_contact_name_is_rejected() -> None:
    with pytest.raises(ValidationError, match="must not be blank"):
        sign_up(contact_name="  ")


def test_company_is_stripped() -> None:
    assert sign_up(company="  Acme Corp  ").company == "Acme Corp"


def test_customer_id_is_company_slug_and_email_digest() -> None:
    digest = hashlib.sha256(b"jane@acme.com").hexdigest()[:6]
    assert sign_up().customer_id == f"acme-corp-{digest}"
    assert re.match(CUSTOMER_ID_PATTERN, sign_up().customer_id)


def test_customer_id_is_stable_regardless_of_email_case() -> None:
    first = sign_up(email="jane@acme.com").customer_id
    assert sign_up(email="Jane@Acme.COM").customer_id == first
    assert sign_up(email="JANE@ACME.COM").customer_id == first


def test_customer_id_differs_for_a_different_email() -> None:
    assert sign_up(email="jane@acme.com").customer_id != sign_up(email="joe@acme.com").customer_id


def test_external_id_wins() -> None:
    a = sign_up(external_id="CRM-00042")
    b = sign_up(external_id="CRM-00042", email="someone.else@acme.com", company="Acme Inc")
    assert a.customer_id == "crm-00042"
    assert b.customer_id == a.customer_id
    assert a.customer_id != sign_up().customer_id


def test_invalid_external_id_is_rejected() -> None:
    with pytest.raises(ValidationError, match="external_id"):
        sign_up(external_id="-starts-with-dash")
    with pytest.raises(ValidationError, match="external_id"):
        sign_up(external_id="has space")


def test_customer_id_is_a_valid_profile_id_for_odd_company_names() -> None:
    for company in ["Ünïcødé GmbH", "!!!", "A" * 200, "Acme, Inc. (EMEA) / Sales"]:
        s = sign_up(company=company)
        assert re.match(CUSTOMER_ID_PATTERN, s.customer_id), s.customer_id
        assert CustomerProfile.from_signup(s).customer_id == s.customer_id


# --------------------------------------------------------------------------- task keys


def test_a_task_key_reads_back_as_written() -> None:
    key = TaskKey("acme-corp-1a2b3c", 2, "email_review-t2:welcome")
    assert str(key) == "acme-corp-1a2b3c:t2:email_review-t2:welcome"
    assert key.local == "t2:email_review-t2:welcome"
    assert TaskKey.parse(str(key)) == key


@pytest.mark.parametrize("bad", ["acme", "acme:kickoff", "acme:tx:kickoff", "acme:t1:", ":t1:k"])
def test_a_malformed_task_id_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        TaskKey.parse(bad)
