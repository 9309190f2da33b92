"""What a sign-up may say: a plan by name only, and an external id that does not take
another customer's lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli import app
from lifecycles import SignupConflict, sign_up
from models.customer import SignUp, workflow_id_for
from models.tables import Customer
from plans import PlanError, load_plan
from tests.api_support import Api, api_for
from tests.conftest import Harness

PATHS = ["plans/default.toml", "../../x.toml", "default.toml", "/etc/passwd", "./default", "a/b"]


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    async with api_for(harness) as api:
        yield api


def payload(external_id: str, **more: str) -> dict[str, str]:
    return {
        "company": "Acme",
        "contact_name": "Ada",
        "email": "ada@acme.test",
        "external_id": external_id,
        **more,
    }


@pytest.mark.parametrize("plan", PATHS)
def test_a_plan_is_a_name_not_a_path(plan: str) -> None:
    with pytest.raises(ValidationError, match="plan"):
        SignUp(company="Acme", contact_name="Ada", email="ada@acme.test", plan=plan)
    with pytest.raises(PlanError, match="unknown plan"):
        load_plan(plan)


async def test_the_webhook_refuses_a_plan_path(api: Api, harness: Harness) -> None:
    for plan in PATHS:
        refused = await api.webhook(payload(f"crm-{uuid.uuid4().hex[:6]}", plan=plan))
        assert refused.status_code == 422, plan
        assert refused.json()["error"]["field"] == "plan"
    with Session(harness.engine) as session:
        assert session.exec(select(Customer)).all() == []


def test_the_cli_refuses_a_plan_path() -> None:
    who = ["--company", "Acme", "--contact-name", "Ada", "--email", "a@acme.test"]
    refused = CliRunner().invoke(
        app,
        ["signup", *who, "--plan", "plans/default.toml"],
        env={"TANDEM_TEMPORAL_ADDRESS": "127.0.0.1:1"},
    )
    assert refused.exit_code != 0 and "plan" in refused.output


async def test_an_external_id_that_makes_another_customers_id_is_refused(
    api: Api, harness: Harness
) -> None:
    tag = uuid.uuid4().hex[:6]
    first, second = f"ACME_{tag}", f"acme-{tag}"
    harness.workflow_ids.add(workflow_id_for(f"acme-{tag}"))
    created = await api.webhook(payload(first))
    assert created.status_code == 201 and created.json()["customer_id"] == f"acme-{tag}"

    refused = await api.webhook(payload(second, company="Another Acme"))
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["field"] == "external_id" and first in error["message"]

    again = await api.webhook(payload(first))  # the same sender, resending: idempotent
    assert again.status_code == 200 and again.json()["new"] is False
    with Session(harness.engine) as session:
        customers = session.exec(select(Customer)).all()
    assert [(c.id, c.external_id, c.company) for c in customers] == [(f"acme-{tag}", first, "Acme")]


async def test_the_python_client_refuses_it_too(harness: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    harness.workflow_ids.add(workflow_id_for(f"globex-{tag}"))
    plan = load_plan("default")
    base = dict(company="Globex", contact_name="Hank", email="hank@globex.test")
    await sign_up(
        harness.client, SignUp(**base, external_id=f"globex.{tag}"), plan, harness.task_queue
    )
    with pytest.raises(SignupConflict, match=f"globex.{tag}"):
        await sign_up(
            harness.client, SignUp(**base, external_id=f"GLOBEX-{tag}"), plan, harness.task_queue
        )
