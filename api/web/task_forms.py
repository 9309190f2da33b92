"""The dashboard's task forms: a form per task kind, turned into the kind's result as
typed (the lifecycle judges it), and the lifecycle's refusal mapped back to the field it
names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from db.queries import latest_success_plan
from models.public import CustomerPublic, TaskPublic
from models.scoring import Quadrant
from models.tables import Customer, OutboxEmail
from models.tasks import Decision, RenewalOutcome, ReviewDecision, TaskKind
from plans import PlanError, load_plan

GOAL_FIELDS = ("key", "metric", "unit", "baseline", "target", "direction", "target_date")
CHOICES = {  # the select boxes of the task forms
    "quadrants": [q.value for q in Quadrant if q is not Quadrant.unknown],
    "outcomes": [o.value for o in RenewalOutcome],
    "decisions": [d.value for d in Decision],
    "review_decisions": [d.value for d in ReviewDecision],
}


def task_context(session: Session, task: TaskPublic, settings_dir: Any) -> dict[str, Any]:
    row = session.get(Customer, task.customer_id)
    customer = None if row is None else CustomerPublic.model_validate(row)
    context: dict[str, Any] = {"task": task, "customer": customer}
    if task.kind == TaskKind.review_call:  # a field per goal of the current plan
        plan = latest_success_plan(session, task.customer_id)
        context["plan_goals"] = plan.goals if plan else []
    if task.kind == TaskKind.playbook and customer is not None and task.playbook:
        try:
            playbook = getattr(load_plan(customer.plan_name, settings_dir).playbooks, task.playbook)
            context["needs_decision"] = bool(playbook and playbook.requires_decision)
        except (PlanError, AttributeError):
            context["needs_decision"] = False
    if task.kind == TaskKind.email_review and task.email_key:
        # The first copy (customer mail is a copy per recipient, under the step's key).
        context["email"] = session.exec(
            select(OutboxEmail)
            .where(
                or_(OutboxEmail.key == task.email_key, OutboxEmail.request_key == task.email_key)
            )
            .order_by(col(OutboxEmail.id))
        ).first()
    return context | CHOICES


def _lines(value: Any) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def form_result(
    kind: str, form: dict[str, str], goal_count: int
) -> tuple[dict[str, Any], list[int]]:
    """The kind's result from the form, as the person typed it: numbers and dates stay
    text, so the lifecycle's own validation names what is wrong. Also returns, for the
    kickoff, which form fieldset each goal in the result came from (blank ones are left
    out, and an error path `goals.N` must point back at the right fieldset)."""
    text = {k: v.strip() for k, v in form.items()}
    if kind == TaskKind.kickoff:
        goals, origin = [], []
        for i in range(goal_count):
            goal = {f: text.get(f"goals-{i}-{f}", "") for f in GOAL_FIELDS}
            if any(goal[f] for f in GOAL_FIELDS if f != "direction"):
                goals.append(goal)
                origin.append(i)
        plan = {
            "intended_use": text.get("intended_use", ""),
            "success_definition": text.get("success_definition", ""),
            "goals": goals,
            "objectives": _lines(form.get("objectives")),
            "constraints": _lines(form.get("constraints")),
        }
        return {
            "success_plan": plan,
            "onboarding_complete": "onboarding_complete" in form,
            "notes": text.get("notes", ""),
        }, origin
    if kind == TaskKind.review_call:
        progress = {
            k.removeprefix("goal_progress-"): v
            for k, v in text.items()
            if k.startswith("goal_progress-") and v
        }
        steps = _lines(form.get("next_steps"))
        return {"notes": text.get("notes", ""), "goal_progress": progress, "next_steps": steps}, []
    fields = {
        TaskKind.renewal_checkpoint: ("manager_rating", "notes"),
        TaskKind.renewal: ("outcome", "reason"),
        TaskKind.playbook: ("notes", "decision"),
        TaskKind.email_review: ("decision", "subject", "text"),
    }[TaskKind(kind)]
    # An optional field left blank is absent, not an empty (and invalid) value.
    optional = {"decision", "subject", "text"}
    return {f: text.get(f, "") for f in fields if text.get(f) or f not in optional}, []


def field_errors(message: str, kind: str, origin: list[int]) -> dict[str, str]:
    """`result.success_plan.goals.0.target: msg; ...` -> {"goals-0-target": "msg", ...}."""
    errors: dict[str, str] = {}
    for part in message.split("; "):
        path, sep, text = part.partition(": ")
        parts = path.split(".")
        if not sep or parts[0] != "result":
            errors.setdefault("form", part)
            continue
        parts = parts[1:]
        if parts[:1] == ["success_plan"]:
            parts = parts[1:] or ["goals"]  # plan-level checks are about its goals
        if not parts:
            field = "text" if kind == TaskKind.email_review else "form"
        elif parts[0] == "goals" and len(parts) > 1 and parts[1].isdigit():
            n = int(parts[1])
            field = "-".join(["goals", str(origin[n] if n < len(origin) else n), *parts[2:3]])
        elif parts[0] == "goal_progress" and len(parts) > 1:
            field = f"goal_progress-{parts[1]}"
        else:
            field = parts[0]
        errors.setdefault(field, text)
    return errors
