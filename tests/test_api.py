"""The HTTP API against the real worker and the real time-skipping Temporal server."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from api.main import create_app
from links import LinkSigner
from models.customer import workflow_id_for
from models.tables import Customer, SignalRecord, SuccessPlanRecord, TaskRecord, TimelineEvent
from settings import Settings
from tests.api_support import Api, api_for
from tests.conftest import Harness, Lifecycle
from tests.test_lifecycle import kickoff_result


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    async with api_for(harness) as api:
        yield api


def signup_payload(external_id: str | None = None) -> dict:
    external_id = external_id or f"crm-{uuid.uuid4().hex[:8]}"
    return {
        "company": "Globex",
        "contact_name": "Hank",
        "email": "hank@globex.test",
        "external_id": external_id,
    }


def rows(harness: Harness, table: type) -> list:
    with Session(harness.engine) as session:
        return list(session.exec(select(table)).all())


async def test_webhook_signature_cases(api: Api, harness: Harness) -> None:
    payload = signup_payload()
    harness.workflow_ids.add(workflow_id_for(payload["external_id"]))
    unsigned = await api.http.post("/webhooks/signup", json=payload)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "bad_signature"
    assert (await api.webhook(payload, secret="not-the-secret")).status_code == 401
    stale = await api.webhook(payload, at=time.time() - 3600)
    assert stale.status_code == 401 and "stale" in stale.json()["error"]["message"]
    assert rows(harness, Customer) == []  # nothing was started

    first = await api.webhook(payload)
    assert first.status_code == 201 and first.json()["new"] is True
    again = await api.webhook(payload)
    assert again.status_code == 200 and again.json()["new"] is False
    assert again.json()["customer_id"] == first.json()["customer_id"] == payload["external_id"]
    assert len(rows(harness, Customer)) == 1

    invalid = await api.webhook({**payload, "email": "not-an-email"})
    assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "email"
    no_id = await api.webhook({k: v for k, v in payload.items() if k != "external_id"})
    assert no_id.status_code == 422 and no_id.json()["error"]["field"] == "external_id"
    unknown_plan = await api.webhook({**payload, "plan": "gold"})
    assert unknown_plan.status_code == 422 and "unknown plan 'gold'" in unknown_plan.text


async def test_roles_and_task_completion(api: Api, acme: Lifecycle) -> None:
    assert (await api.get("/tasks", role=None)).status_code == 401
    bad = await api.http.get("/tasks", headers={"Authorization": "Bearer tdm_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"

    await acme.sign_up()
    await acme.advance(hours=1)
    kickoff = acme.task_id("kickoff")
    manager_inbox = (await api.get("/tasks")).json()
    assert [t["id"] for t in manager_inbox] == [kickoff]
    assert (await api.get("/tasks", role="rep")).json() == []  # a manager's task
    as_rep = await api.post(f"/tasks/{kickoff}/complete", role="rep", json={"result": {}})
    assert as_rep.status_code == 403
    assert (await api.get("/tokens")).status_code == 403  # admins only
    assert (await api.get("/tokens", role="admin")).status_code == 200

    refused = await api.post(f"/tasks/{kickoff}/complete", json={"result": {"kind": "kickoff"}})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "task_refused" and error["field"] == "result.success_plan"
    assert "Field required" in error["message"]
    assert acme.task_row(kickoff).status == "open" and rows(acme.h, SuccessPlanRecord) == []

    done = await api.post(f"/tasks/{kickoff}/complete", json={"result": kickoff_result()})
    assert done.status_code == 200 and done.json()["completed_by"] == "sam@team.test"
    assert acme.task_row(kickoff).status == "done"  # read your own write
    detail = (await api.get(f"/customers/{acme.customer_id}")).json()
    assert detail["success_plan"]["success_definition"].startswith("Every rep logs")
    assert detail["goals"][0]["key"] == "active_reps"


async def test_not_found_is_404_in_one_shape(api: Api) -> None:
    for path in ("/customers/nobody", "/plans/platinum"):
        response = await api.get(path)
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"status", "code", "message", "field"}
    missing = await api.post("/tasks/nobody:t1:kickoff/complete", json={"result": {}})
    assert missing.status_code == 404
    assert (await api.get("/no/such/route")).status_code == 404


async def test_signal_batches_validate_and_are_idempotent(api: Api, acme: Lifecycle) -> None:
    await acme.sign_up()
    # The API takes no signal from its own future: the wall clock's, which the shared
    # test server's skipped time may be well past.
    now = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    batch = [
        {
            "customer_id": acme.customer_id,
            "kind": "nps",
            "value": 9,
            "observed_at": now,
            "client_id": "s-1",
        },
        {"customer_id": acme.customer_id, "kind": "csat", "value": 7, "observed_at": now},
    ]
    invalid = await api.post("/signals", json={"signals": batch})
    assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "signals.1.value"
    assert "csat must be between 1 and 5" in invalid.json()["error"]["message"]
    assert rows(acme.h, SignalRecord) == []  # the valid first item was not stored either

    batch[1]["value"] = 4
    batch[1]["client_id"] = "s-2"
    first = await api.post("/signals", json={"signals": batch})
    assert first.json() == {"received": 2, "added": 2, "duplicates": 0}
    again = await api.post("/signals", json={"signals": batch})
    assert again.json() == {"received": 2, "added": 0, "duplicates": 2}
    unknown = await api.post("/signals", json={"signals": [{**batch[0], "customer_id": "x"}]})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no customer 'x'"  # no CLI advice here
    # Before the kickoff there are no goals: a value is taken (the kickoff may record
    # its key). Once the plan names its goals, a key it does not have is refused,
    # naming the item and the goals there are; a resend of what was stored is not.
    goal = {**batch[1], "kind": "goal", "value": 3, "goal_key": "nosuch", "client_id": "g-1"}
    early = await api.post("/signals", json={"signals": [goal]})
    assert early.json() == {"received": 1, "added": 1, "duplicates": 0}
    await acme.complete(acme.task_id("kickoff"), kickoff_result())  # goal: active_reps
    late = {**goal, "client_id": "g-2"}
    no_goal = await api.post("/signals", json={"signals": [batch[0], late]})
    assert no_goal.status_code == 422 and no_goal.json()["error"]["field"] == "signals.1.goal_key"
    message = no_goal.json()["error"]["message"]
    assert "has no goal 'nosuch' (its goals: active_reps)" in message
    resent = await api.post("/signals", json={"signals": [goal]})
    assert resent.json() == {"received": 1, "added": 0, "duplicates": 1}
    assert (await api.post("/signals", role="rep", json={"signals": batch})).status_code == 403


async def test_signals_without_a_zone_from_the_future_or_absurd_are_refused(
    api: Api, acme: Lifecycle
) -> None:
    """Each a 422 naming the item's field, not a 500, and nothing of the batch stored: a
    future MRR would otherwise stay the account's latest until that day came."""
    await acme.sign_up()
    now = datetime.now(UTC)
    good = {
        "customer_id": acme.customer_id,
        "kind": "nps",
        "value": 9,
        "observed_at": now.isoformat(),
    }
    usage = {**good, "kind": "usage", "value": 10}
    zone = "a time zone is required: end the time with Z (UTC) or an offset such as +00:00"
    cases = [
        ({"observed_at": "2026-12-01T00:00:00"}, "observed_at", zone),
        ({"observed_at": "2026-12-01"}, "observed_at", zone),
        ({**usage, "period_start": "2026-01-01"}, "period_start", zone),
        ({"kind": "mrr", "value": 1e308}, "value", "less than or equal to 1000000000000"),
        ({"kind": "tickets", "value": 1e308}, "value", "less than or equal to 1000000000000"),
        ({"observed_at": "0001-01-01T00:00:00+14:00"}, "observed_at", "from 1970 to 2999"),
        ({**usage, "periodStart": "2026-01-01T00:00:00Z"}, "periodStart", "Extra inputs"),
        (
            {**usage, "period_start": (now + timedelta(hours=1)).isoformat()},
            "period_start",  # a check across two fields names the later one
            "period_start must be before observed_at",
        ),
        (
            {"kind": "mrr", "value": 99999, "observed_at": f"{now.year + 1}-12-01T00:00:00Z"},
            "observed_at",
            f"observed_at: {now.year + 1}-12-01T00:00:00+00:00 is in the future",
        ),
        (
            {
                "kind": "mrr",
                "value": 99999,
                "observed_at": (now + timedelta(days=1, minutes=5)).isoformat(),
            },
            "observed_at",
            "is in the future",
        ),
    ]
    for fields, field, message in cases:
        batch = [good, {**good, **fields}]
        refused = await api.post("/signals", json={"signals": batch})
        error = refused.json()["error"]
        assert refused.status_code == 422, (fields, refused.text)
        assert error["field"] == f"signals.1.{field}".rstrip("."), (fields, error)
        assert message in error["message"], (fields, error)
    assert rows(acme.h, SignalRecord) == []  # not even the good first item
    assert [c.mrr for c in rows(acme.h, Customer)] == [None]
    # A sender's clock a little fast is no mistake, and a zoned time in any zone is taken.
    fast = {
        **good,
        "kind": "mrr",
        "value": 1200,
        "observed_at": (now + timedelta(hours=3)).isoformat(),
    }
    zoned = {**good, "observed_at": "2026-01-05T09:30:00+01:00"}
    taken = await api.post("/signals", json={"signals": [fast, zoned]})
    assert taken.json() == {"received": 2, "added": 2, "duplicates": 0}
    assert [c.mrr for c in rows(acme.h, Customer)] == [1200]


async def test_a_batch_with_one_mistake_repeated_is_answered_briefly(api: Api) -> None:
    same = {"customer_id": "acme", "kind": "usage", "value": 1, "metric": "Report Created"}
    batch = [{**same, "observed_at": "2026-01-01T00:00:00Z"} for _ in range(100)]
    refused = await api.post("/signals", json={"signals": batch})
    error = refused.json()["error"]
    assert refused.status_code == 422 and error["field"] == "signals.0.metric"
    assert error["message"].count("is not a metric name") == 20
    assert error["message"].endswith("; and 80 more problems")


async def test_survey_link_records_once(api: Api, acme: Lifecycle) -> None:
    await acme.sign_up()
    signer = LinkSigner(api.settings.secret_key, "http://test")
    links = signer.survey_links(acme.customer_id, "nps", f"{acme.customer_id}:t1:check_in-1")
    nine = links[9]["url"].removeprefix("http://test")

    shown = await api.http.get(nine)  # opening the link records nothing
    assert shown.status_code == 200 and rows(acme.h, SignalRecord) == []
    thanks = await api.http.post(nine)
    assert thanks.status_code == 200 and "Thank you" in thanks.text
    replay = await api.http.post(links[3]["url"].removeprefix("http://test"))
    assert replay.status_code == 409 and "already answered" in replay.text
    opened_again = await api.http.get(links[3]["url"].removeprefix("http://test"))
    assert opened_again.status_code == 409 and "already answered" in opened_again.text
    token, query = nine.split("?")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    tampered = await api.http.post(f"{forged}?{query}")
    assert tampered.status_code == 400 and "not valid" in tampered.text
    [answer] = rows(acme.h, SignalRecord)
    assert (answer.kind, answer.value, answer.source) == ("nps", 9, "survey")

    await acme.advance(minutes=5)  # the lifecycle hears of it and keeps it on the timeline
    assert "survey_answered" in {e.kind for e in rows(acme.h, TimelineEvent)}


async def test_expired_survey_link(harness: Harness, acme: Lifecycle, monkeypatch) -> None:
    await acme.sign_up()
    async with api_for(harness) as api:
        import itsdangerous.timed

        real = itsdangerous.timed.time.time
        monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() - 30 * 86400)
        url = LinkSigner(api.settings.secret_key, "http://test").survey_links(
            acme.customer_id, "csat", "old-survey"
        )[4]["url"]
        monkeypatch.setattr(itsdangerous.timed.time, "time", real)
        expired = await api.http.post(url.removeprefix("http://test"))
    assert expired.status_code == 410 and "expired" in expired.text
    assert rows(harness, SignalRecord) == []


async def test_customer_writes_their_own_success_plan(api: Api, acme: Lifecycle) -> None:
    await acme.sign_up()
    await acme.advance(hours=1)
    await acme.complete(acme.task_id("kickoff"), kickoff_result())
    page = LinkSigner(api.settings.secret_key, "http://test").plan_link(acme.customer_id)
    path = page.removeprefix("http://test")
    form = await api.http.get(path)
    assert form.status_code == 200 and "Every rep logs" in form.text  # the manager's words

    blank = await api.http.post(path, data={"success_definition": " "})
    assert blank.status_code == 422 and "field-error" in blank.text
    saved = await api.http.post(
        path,
        data={
            "success_definition": "Our reps stop keeping their own spreadsheets",
            "objectives": "Forecast in an afternoon\n\nOne pipeline",
        },
    )
    assert saved.status_code == 303
    shown = await api.http.get(saved.headers["location"])
    assert "we have recorded it in your words" in shown.text
    [words] = [p for p in rows(acme.h, SuccessPlanRecord) if p.source == "customer"]
    assert words.objectives == ["Forecast in an afternoon", "One pipeline"]
    assert (await acme.status()).customer_definition.startswith("Our reps stop")
    detail = (await api.get(f"/customers/{acme.customer_id}")).json()
    assert detail["customer_words"]["success_definition"].startswith("Our reps stop")
    assert detail["success_plan"]["success_definition"].startswith("Every rep logs")


async def test_customer_list_filters_and_pages(api: Api, harness: Harness) -> None:
    for n in range(5):
        payload = signup_payload(f"list-{n}")
        harness.workflow_ids.add(workflow_id_for(payload["external_id"]))
        assert (await api.webhook(payload)).status_code == 201
    first = (await api.get("/customers", params={"limit": 2})).json()
    assert [c["id"] for c in first["items"]] == ["list-0", "list-1"]
    second = await api.get("/customers", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [c["id"] for c in second.json()["items"]] == ["list-2", "list-3"]
    onboarding = (await api.get("/customers", params={"phase": "onboarding"})).json()["items"]
    assert len(onboarding) == 5
    assert (await api.get("/customers", params={"quadrant": "happy_profitable"})).json() == {
        "items": [],
        "next_cursor": None,
    }
    bad = await api.get("/customers", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"
    assert rows(harness, TaskRecord)  # kickoff tasks were opened for each


async def test_webhook_is_rate_limited(harness: Harness) -> None:
    async with api_for(harness, webhook_rate_per_minute=3) as api:
        codes = [(await api.webhook({"x": 1})).status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]


async def test_unstorable_input_is_a_422_not_a_500(api: Api) -> None:
    """Found by the fuzzer: PostgreSQL text cannot hold NUL; it must not be a 500."""
    response = await api.get("/customers", params={"owner": "\x00"})
    if api.h.engine.dialect.name == "postgresql":
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid"
    else:  # SQLite stores and compares NUL like any other character
        assert response.status_code == 200 and response.json()["items"] == []


async def test_a_body_that_is_not_json_says_so(api: Api) -> None:
    response = await api.http.post(
        "/signals",
        content=b'{"signals":',
        headers={**api.auth("manager"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == {
        "status": 422,
        "code": "invalid",
        "message": "the request body is not valid JSON (at character 11)",
        "field": None,
    }


async def test_renewal_before_without_a_zone_means_utc(api: Api) -> None:
    response = await api.get("/customers", params={"renewal_before": "2030-01-01T00:00:00"})
    assert response.status_code == 200 and response.json()["items"] == []


def test_what_the_api_reads_out_is_typed_to_the_leaves(settings: Settings) -> None:
    """Customers and tasks are read models (models/public.py): every object in their
    schema names its fields or the type of its values, none is a free-form mapping."""
    schemas = create_app(settings=settings).openapi()["components"]["schemas"]
    free_form: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            typed = "properties" in node or node.get("additionalProperties", True) not in (True, {})
            if node.get("type") == "object" and not typed:
                free_form.append(where)
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for n, value in enumerate(node):
                walk(value, f"{where}[{n}]")

    reached, todo = set(), ["CustomersPublic", "CustomerDetailPublic", "TaskPublic"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        walk(schemas[name], name)
        text = json.dumps(schemas[name])
        todo += re.findall(r'"#/components/schemas/([^"]+)"', text)
    assert {"CustomerPublic", "AssessmentPublic", "GoalPublic", "KickoffResult"} <= reached
    assert free_form == []
