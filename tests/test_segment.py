"""Product events the Segment way: the official `segment-analytics-python` library sends
to a running Tandem (uvicorn on loopback) through its host setting; plain HTTP covers
the refusals, idempotency by messageId, attribution and events that wait for their
account. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import httpx
import pytest
from segment.analytics import Client as SegmentClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.main import create_app
from db.events import prune
from db.sources import create_source, revoke_source
from db.usage import usage_signals
from models.product_events import ProductEvent, TutorialCompletion
from models.tables import Customer, SignalRecord
from plans import BUILT_IN
from settings import Settings
from tests.api_support import staff_tokens
from tests.browser_support import serve

NOW = datetime.now(UTC)


def add_customer(engine: Engine, customer_id: str, external_id: str | None = None) -> None:
    """The account's record, as sign-up writes it."""
    with Session(engine) as session:
        session.add(
            Customer(
                id=customer_id,
                company=f"{customer_id} Inc",
                contact_name="Ada",
                email=f"ada@{customer_id}.test",
                external_id=external_id,
                plan_name="default",
                plan_version=1,
                phase="onboarding",
                term_start=NOW,
                term_end=NOW + timedelta(days=365),
            )
        )
        session.commit()


class Tracking:
    """Plain HTTP to the app: the tracking API with a write key, reads with a token."""

    def __init__(self, http: httpx.AsyncClient, key: str, token: str) -> None:
        self.http, self.key, self.token = http, key, token

    def basic(self, key: str | None = None) -> dict[str, str]:
        user = base64.b64encode(f"{key or self.key}:".encode()).decode()
        return {"Authorization": f"Basic {user}"}

    async def send(self, path: str, body: Any, key: str | None = None) -> httpx.Response:
        return await self.http.post(f"/v1/{path}", json=body, headers=self.basic(key))

    async def get(self, path: str) -> Any:
        response = await self.http.get(path, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text
        return response.json()

    async def counts(self, customer: str) -> dict[tuple[str, str], int]:
        usage = await self.get(f"/customers/{customer}/usage?days=60")
        return {(d["metric"], d["day"]): d["count"] for d in usage["days"]}


def app_settings(settings: Settings) -> Settings:
    # No Temporal in these tests: a port nothing listens on, so telling fails at once.
    return settings.model_copy(update={"temporal_address": "127.0.0.1:9"})


@pytest.fixture
async def tracking(engine: Engine, settings: Settings) -> AsyncIterator[Tracking]:
    app = create_app(settings=app_settings(settings), engine=engine)
    _, key = create_source(engine, "web app")
    token = staff_tokens(engine)["admin"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Tracking(http, key, token)


def track(event: str, user: str = "u1", group: str | None = None, **extra: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": str(uuid.uuid4()),
        "timestamp": NOW.isoformat(),
        **extra,
    }
    if group is not None:
        call["context"] = {"groupId": group}
    return call


# -- the official library -------------------------------------------------------------


@pytest.fixture
def served(engine: Engine, settings: Settings) -> Iterator[str]:
    with serve(create_app(settings=app_settings(settings), engine=engine)) as url:
        yield url


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_the_segment_library_sends_to_tandem(engine: Engine, served: str, compressed: bool) -> None:
    add_customer(engine, "acme", external_id="crm-42")
    _, key = create_source(engine, "backend")
    token = staff_tokens(engine)["admin"]
    errors: list[Exception] = []
    analytics = SegmentClient(
        key, host=served, sync_mode=True, gzip=compressed, on_error=lambda e, _: errors.append(e)
    )
    analytics.identify("ada", {"email": "ada@acme.test", "name": "Ada"})
    analytics.group("ada", "crm-42", {"name": "Acme", "mrr": 1200, "plan": "pro", "seats": 25})
    analytics.track("ada", "Report Created", {"rows": 10})  # through Ada's group
    analytics.track("bob", "Report Created", context={"groupId": "crm-42"})
    analytics.track("ada", "Invite Sent")
    analytics.flush()
    assert errors == []

    headers = {"Authorization": f"Bearer {token}"}
    usage = httpx.get(f"{served}/customers/acme/usage", headers=headers).json()
    today = datetime.now(UTC).date().isoformat()
    counts = {(d["metric"], d["day"]): d["count"] for d in usage["days"]}
    assert counts == {
        ("report_created", today): 2,
        ("invite_sent", today): 1,
        ("active_users", today): 2,  # Ada and Bob
    }
    assert (usage["mrr"], usage["plan"], usage["seats"]) == (1200.0, "pro", 25)
    with Session(engine) as session:
        kinds = session.exec(select(ProductEvent.type)).all()
        assert sorted(kinds) == ["group", "identify", "track", "track", "track"]


# -- plain HTTP -------------------------------------------------------------------------


async def test_a_wrong_or_revoked_key_is_refused(tracking: Tracking, engine: Engine) -> None:
    assert (await tracking.send("track", track("Login"), key="wk_nonsense")).status_code == 401
    anonymous = await tracking.http.post("/v1/track", json=track("Login"))
    assert anonymous.status_code == 401
    revoked, old_key = create_source(engine, "old app")
    assert (await tracking.send("track", track("Login"), key=old_key)).status_code == 200
    revoke_source(engine, str(revoked.id))
    assert (await tracking.send("track", track("Login"), key=old_key)).status_code == 401
    # Segment's libraries also put the key in the body.
    body = {"batch": [track("Login")], "writeKey": tracking.key}
    assert (await tracking.http.post("/v1/batch", json=body)).json() == {"success": True}


async def test_a_malformed_call_is_a_400_naming_the_field(tracking: Tracking) -> None:
    no_name = track("x")
    del no_name["event"]
    response = await tracking.send("track", no_name)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body.event"
    nobody = track("Login", user="")
    batch = {"batch": [track("Login"), track("Login"), nobody]}
    response = await tracking.send("batch", batch)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "batch.2.userId"
    bad_time = track("Login", timestamp="yesterday-ish")
    response = await tracking.send("batch", {"batch": [bad_time]})
    assert response.json()["error"]["field"] == "batch.0.timestamp"
    group = {"type": "group", "userId": "u1", "traits": {}}
    response = await tracking.send("group", group)
    assert (response.status_code, response.json()["error"]["field"]) == (400, "body.groupId")
    # Nothing of a refused batch is kept.
    assert await tracking.get("/sources/unattributed") == []


async def test_size_limits(tracking: Tracking) -> None:
    big = track("Export", properties={"blob": "x" * 33_000})
    response = await tracking.send("batch", {"batch": [track("Login"), big]})
    assert (response.status_code, response.json()["error"]["field"]) == (400, "batch.1")
    many = {"batch": [track("Export", properties={"blob": "x" * 20_000}) for _ in range(26)]}
    assert (await tracking.send("batch", many)).status_code == 413
    assert (await tracking.send("track", big)).status_code == 413
    # Past the limit once inflated: gzip does not get round it.
    packed = gzip.compress(json.dumps(many).encode())
    headers = {**tracking.basic(), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = await tracking.http.post("/v1/batch", content=packed, headers=headers)
    assert response.status_code == 413


async def test_a_resent_message_is_counted_once(tracking: Tracking, engine: Engine) -> None:
    add_customer(engine, "acme")
    batch = {"batch": [track("Login", group="acme"), track("Login", user="u2", group="acme")]}
    for _ in range(3):
        assert (await tracking.send("batch", batch)).json() == {"success": True}
    # And without a messageId (curl by hand): the call itself identifies it.
    by_hand = {"userId": "u1", "event": "Login", "context": {"groupId": "acme"}}
    by_hand["timestamp"] = NOW.isoformat()
    for _ in range(2):
        assert (await tracking.send("track", by_hand)).status_code == 200
    today = NOW.date().isoformat()
    assert await tracking.counts("acme") == {("login", today): 3, ("active_users", today): 2}


async def test_events_for_an_unknown_account_wait_and_are_applied(
    tracking: Tracking, engine: Engine
) -> None:
    await tracking.send("batch", {"batch": [track("Login", group="crm-7"), track("Login")]})
    await tracking.send("group", {"userId": "u9", "groupId": "crm-7", "traits": {"mrr": 99}})
    await tracking.send("track", track("Upload", user="u9"))  # through u9's group
    waiting = await tracking.get("/sources/unattributed")
    assert [(w["group_id"], w["user_key"], w["events"]) for w in waiting] == [
        ("crm-7", None, 3),
        (None, "u1", 1),  # no group named, and u1 has joined none
    ]
    add_customer(engine, "globex", external_id="crm-7")
    today = NOW.date().isoformat()
    assert await tracking.counts("globex") == {
        ("login", today): 1,
        ("upload", today): 1,
        ("active_users", today): 2,
    }
    # u1 joins later: their waiting Login is applied as well.
    await tracking.send("group", {"userId": "u1", "groupId": "crm-7"})
    assert (await tracking.counts("globex"))[("login", today)] == 2
    assert await tracking.get("/sources/unattributed") == []
    with Session(engine) as session:
        mrr = session.exec(select(SignalRecord).where(SignalRecord.kind == "mrr")).all()
        assert [(r.customer_id, r.value) for r in mrr] == [("globex", 99.0)]
        globex = session.get(Customer, "globex")  # the forecast reads it on the row
        assert globex is not None
        assert (globex.mrr, globex.mrr_observed_at) == (99.0, mrr[0].observed_at)


async def test_the_plan_maps_events_to_metrics_tutorials_and_goals(
    tracking: Tracking, engine: Engine, settings: Settings, tmp_path: Any
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    default = (BUILT_IN / "default.toml").read_text(encoding="utf-8")
    plans.joinpath("default.toml").write_text(
        default
        + """
[events]
metrics = { "Report Created" = "reports", "Report Shared" = "reports" }
ignore = ["Heartbeat"]

[[events.tutorials]]
tutorial = "first-steps"
event = "Workspace Set Up"
properties = { invited = true }

[[events.goals]]
goal = "active_reps"
event = "Reps Counted"
property = "total"
""",
        encoding="utf-8",
    )
    app = create_app(
        settings=app_settings(settings).model_copy(update={"plans_dir": plans}), engine=engine
    )
    add_customer(engine, "acme")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        mapped = Tracking(http, tracking.key, tracking.token)
        calls = [
            track("Report Created", group="acme"),
            track("Report Shared", group="acme"),
            track("Heartbeat", group="acme"),
            track("Workspace Set Up", group="acme", properties={"invited": False}),
            track("Workspace Set Up", group="acme", properties={"invited": True}),
            track("Reps Counted", group="acme", properties={"total": 14}),
        ]
        assert (await mapped.send("batch", {"batch": calls})).status_code == 200
        today = NOW.date().isoformat()
        counts = await mapped.counts("acme")
    assert counts[("reports", today)] == 2
    assert ("heartbeat", today) not in counts
    assert counts[("workspace_set_up", today)] == 2
    with Session(engine) as session:
        done = session.exec(select(TutorialCompletion)).all()
        assert [(d.customer_id, d.tutorial, d.told_at) for d in done] == [
            ("acme", "first-steps", None)  # Temporal is not reachable here: it waits
        ]
        goals = session.exec(select(SignalRecord).where(SignalRecord.kind == "goal")).all()
        assert [(g.goal_key, g.value) for g in goals] == [("active_reps", 14.0)]


async def test_old_raw_events_are_pruned_but_counts_and_waiting_ones_stay(
    tracking: Tracking, engine: Engine
) -> None:
    add_customer(engine, "acme")
    await tracking.send("batch", {"batch": [track("Login", group="acme"), track("Login")]})
    assert prune(engine, days=30, now=datetime.now(UTC) + timedelta(days=31)) == 1
    with Session(engine) as session:
        left = session.exec(select(ProductEvent.customer_id)).all()
    assert left == [None]  # the one still waiting for its account
    assert (await tracking.counts("acme"))[("login", NOW.date().isoformat())] == 1


async def test_the_api_prunes_old_raw_events_itself(
    engine: Engine, settings: Settings, tracking: Tracking, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a machine booted ten seconds ago: the monotonic clock counts from the boot.
    monkeypatch.setattr("api.routes.segment.time.monotonic", lambda: 10.0)
    add_customer(engine, "acme")
    await tracking.send("track", track("Login", group="acme"))
    with Session(engine) as session:  # as if it had come 31 days ago
        session.exec(select(ProductEvent)).one().received_at = NOW - timedelta(days=31)
        session.commit()
    app = create_app(settings=app_settings(settings), engine=engine)  # a process started now
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        fresh = Tracking(http, tracking.key, tracking.token)
        assert (await fresh.send("track", track("Export", group="acme"))).status_code == 200
    with Session(engine) as session:
        assert session.exec(select(ProductEvent.event)).all() == ["Export"]


async def test_the_rollup_is_the_usage_scoring_reads(tracking: Tracking, engine: Engine) -> None:
    add_customer(engine, "acme")
    yesterday = NOW - timedelta(days=1)
    calls = [
        track("Report Created", group="acme", timestamp=yesterday.isoformat()),
        track("Report Created", user="u2", group="acme", timestamp=yesterday.isoformat()),
        track("Report Created", group="acme"),
    ]
    await tracking.send("batch", {"batch": calls})
    with Session(engine) as session:
        signals = usage_signals(session, "acme", NOW - timedelta(days=7), NOW)
    day = datetime.combine(yesterday.date(), datetime.min.time(), UTC)
    assert sorted((o.metric, o.value, o.period_start, o.observed_at) for o in signals) == [
        ("active_users", 1.0, None, NOW),
        ("active_users", 2.0, None, day + timedelta(days=1)),
        ("report_created", 1.0, day + timedelta(days=1), NOW),  # today so far
        ("report_created", 2.0, day, day + timedelta(days=1)),
    ]
    assert all(o.kind == "usage" for o in signals)


async def test_an_event_counts_for_its_day_in_utc(tracking: Tracking, engine: Engine) -> None:
    add_customer(engine, "acme")
    day = NOW.date() - timedelta(days=2)
    late_in_new_york = datetime.combine(day, time(23, 30), timezone(timedelta(hours=-5)))
    calls = [
        track("Export", group="acme", timestamp=late_in_new_york.isoformat()),
        track("Export", user="u2", group="acme", timestamp=f"{day.isoformat()}T12:00:00"),
    ]
    await tracking.send("batch", {"batch": calls})
    # The same user on the same day again, in a batch of its own: active once.
    again = track("Export", group="acme", timestamp=f"{(day + timedelta(days=1))}T04:31:00Z")
    await tracking.send("track", again)
    counts = await tracking.counts("acme")
    next_day = (day + timedelta(days=1)).isoformat()
    assert {k: v for k, v in counts.items() if k[1] <= next_day} == {
        ("export", day.isoformat()): 1,  # a time without a zone is UTC
        ("active_users", day.isoformat()): 1,
        ("export", next_day): 2,  # 23:30 in New York is 04:30 the next day in UTC
        ("active_users", next_day): 1,
    }


async def test_a_webhook_destination_posts_bare_calls_to_batch(
    tracking: Tracking, engine: Engine
) -> None:
    add_customer(engine, "acme")
    one = track("Login", group="acme")
    assert (await tracking.send("batch", one)).json() == {"success": True}
    listed = [track("Login", user="u2", group="acme"), track("Export", group="acme")]
    assert (await tracking.send("batch", listed)).json() == {"success": True}
    today = NOW.date().isoformat()
    assert await tracking.counts("acme") == {
        ("login", today): 2,
        ("export", today): 1,
        ("active_users", today): 2,
    }


async def test_an_event_is_never_dated_after_its_receipt(
    tracking: Tracking, engine: Engine
) -> None:
    """A device clock months ahead, or a `sentAt` years behind its `timestamp` (Segment's
    skew correction would carry the event years on), counts on the day it arrived."""
    add_customer(engine, "acme")
    ahead = datetime.now(UTC) + timedelta(days=180)
    calls = [
        track("Export", group="acme", timestamp=ahead.isoformat()),
        track("Export", user="u2", group="acme", sentAt="2020-01-01T00:00:00Z"),
    ]
    assert (await tracking.send("batch", {"batch": calls})).status_code == 200
    counts = await tracking.counts("acme")
    received = datetime.now(UTC).date()
    days = {date.fromisoformat(day) for _, day in counts}
    assert max(days) <= received  # nothing dated into the days to come
    assert sum(n for (metric, _), n in counts.items() if metric == "export") == 2
    placeholder = track("Export", group="acme", timestamp="0001-01-01T00:00:00+14:00")
    refused = await tracking.send("batch", {"batch": [placeholder]})
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "batch.0.timestamp"
    assert "the year is from 1970 to 2999" in refused.json()["error"]["message"]


async def test_an_absurd_trait_is_no_mrr_or_seat_count(tracking: Tracking, engine: Engine) -> None:
    add_customer(engine, "acme")
    traits = {"mrr": 1.7e308, "seats": 10**15, "plan": "pro"}
    group = {"type": "group", "userId": "u1", "groupId": "acme", "traits": traits}
    assert (await tracking.send("group", group)).status_code == 200
    with Session(engine) as session:
        assert session.exec(select(SignalRecord)).all() == []
        assert session.get_one(Customer, "acme").mrr is None
    sane = {**group, "messageId": "m2", "traits": {"mrr": 1200, "seats": 25}}
    assert (await tracking.send("group", sane)).status_code == 200
    with Session(engine) as session:
        assert session.get_one(Customer, "acme").mrr == 1200
