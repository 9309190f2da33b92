"""`tandem demo`: a handful of customers across the success quadrant, through the real
workflows (sign-up, kickoff with their success plan, signals, an assessment), so a new
user sees a populated dashboard within a minute."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine
from temporalio.client import Client

import lifecycles
from db.ingest import record_signals
from models.customer import SignUp
from models.plan import PlanTemplate
from models.signals import SignalIn, SignalKind
from models.tasks import TaskCompletion


class Persona(BaseModel):
    company: str
    contact: str
    definition: str
    goal: str
    baseline: float
    target: float
    measured: float | None
    signals: dict[str, list[float]]


PERSONAS = [
    Persona(company="Northwind Traders", contact="Nina", goal="orders tracked in the app",
            definition="Every order is tracked in one place, not in inboxes",
            baseline=20, target=100, measured=70,
            signals={"nps": [9, 10, 9], "csat": [5], "usage": [100, 150], "fcr": [0.9],
                     "revenue": [24000], "cost": [7000]}),
    Persona(company="Initech", contact="Peter", goal="reports automated",
            definition="Our weekly TPS reports build themselves",
            baseline=0, target=20, measured=1,
            signals={"nps": [3, 4], "csat": [2], "usage": [150, 80], "fcr": [0.5],
                     "revenue": [30000], "cost": [8000]}),
    Persona(company="Umbrella Health", contact="Alice", goal="clinics onboarded",
            definition="All twelve clinics book through the product",
            baseline=1, target=12, measured=9,
            signals={"nps": [9, 9], "csat": [5], "usage": [80, 120], "fcr": [0.9],
                     "revenue": [8000], "cost": [11000]}),
    Persona(company="Stark Logistics", contact="Pepper", goal="late shipments",
            definition="Fewer than one late shipment in fifty",
            baseline=10, target=2, measured=11,
            signals={"nps": [2, 5], "csat": [2], "usage": [60, 30], "fcr": [0.4],
                     "revenue": [5000], "cost": [9000]}),
    Persona(company="Wayne Media", contact="Lucius", goal="titles published",
            definition="Publish every title the week it is finished",
            baseline=10, target=40, measured=None,
            signals={"nps": [7, 7], "csat": [3], "usage": [100, 100], "fcr": [0.7],
                     "revenue": [50000], "cost": [5000]}),
    Persona(company="Hooli", contact="Gavin", goal="teams live", definition="",
            baseline=0, target=10, measured=None, signals={}),
]  # fmt: skip


def kickoff(persona: Persona) -> dict[str, Any]:
    direction = "increase" if persona.target > persona.baseline else "decrease"
    return {
        "kind": "kickoff",
        "onboarding_complete": True,
        "success_plan": {
            "intended_use": f"{persona.company} runs its day-to-day work in the product",
            "success_definition": persona.definition,
            "goals": [{
                "key": "main", "metric": persona.goal, "baseline": persona.baseline,
                "target": persona.target, "direction": direction,
                "target_date": (date.today() + timedelta(days=180)).isoformat(),
            }],
        },
    }  # fmt: skip


async def seed_demo(
    client: Client,
    engine: Engine,
    plan: PlanTemplate,
    task_queue: str,
    progress: Callable[[str], None] = print,
) -> list[tuple[str, str]]:
    """Returns (company, quadrant) per customer, as assessed."""
    placed = []
    for persona in PERSONAS:
        email = f"{persona.contact.lower()}@{persona.company.split()[0].lower()}.test"
        signup = SignUp(
            company=persona.company,
            contact_name=persona.contact,
            email=email,
            plan=plan.name,
            external_id=f"demo-{persona.company.split()[0].lower()}",
        )
        receipt = await lifecycles.sign_up(client, signup, plan, task_queue)
        customer_id = receipt.customer_id
        if not persona.definition:  # a brand-new customer: nothing known yet
            placed.append((persona.company, "unknown"))
            progress(f"  {persona.company:<18} signed up, kickoff pending")
            continue
        task_id = f"{customer_id}:t1:kickoff"
        status = await lifecycles.status(client, customer_id)
        if any(t.task_id == task_id for t in status.open_tasks):
            await lifecycles.complete_task(
                client,
                TaskCompletion(task_id=task_id, completed_by="demo", result=kickoff(persona)),
            )
        now = datetime.now(UTC)
        signals = [
            SignalIn(customer_id=customer_id, kind=SignalKind(kind), value=value,
                     observed_at=now - timedelta(minutes=len(values) - i), source="demo",
                     client_id=f"demo:{kind}:{i}")
            for kind, values in persona.signals.items()
            for i, value in enumerate(values)
        ]  # fmt: skip
        if persona.measured is not None:
            signals.append(
                SignalIn(
                    customer_id=customer_id,
                    kind=SignalKind.goal,
                    value=persona.measured,
                    goal_key="main",
                    observed_at=now,
                    source="demo",
                    client_id="demo:goal",
                )
            )
        record_signals(engine, signals)
        assessment = await lifecycles.reassess(client, customer_id)
        placed.append((persona.company, assessment.quadrant.value))
        progress(f"  {persona.company:<18} {assessment.quadrant.value}")
    return placed
