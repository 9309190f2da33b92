"""A contact change as every staff surface makes it (the API's routes and the
dashboard's forms): stored by db.contacts, then, when it took an active champion
away, told to the account's lifecycle, which opens the `champion_left` playbook task.
One path, so the dashboard cannot forget the lifecycle the API tells."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from api.deps import get_client
from api.errors import ApiError
from db.contacts import ContactChanged, update_contact
from lifecycles import LifecycleError, tell_champion_left
from models.contacts import ContactChange


async def tell_lifecycle(request: Request, done: ContactChanged) -> ContactChanged:
    """The change is stored; a champion gone is told to the lifecycle, and the answer
    says what became of that (Temporal out of reach refuses nothing already stored)."""
    if not done.champion_left:
        return done
    try:
        client = await get_client(request)
        done.lifecycle = await tell_champion_left(
            client, done.contact.customer_id, done.contact.email
        )
    except (ApiError, LifecycleError) as error:
        done.lifecycle = f"not told: {error}"
    return done


async def change_contact(
    request: Request, engine: Engine, ref: str, email: str, change: ContactChange, actor: str
) -> ContactChanged:
    """Change a contact (db.contacts.update_contact's rules and errors), then tell the
    lifecycle if a champion left. The database work runs off the event loop."""
    done = await run_in_threadpool(update_contact, engine, ref, email, change, actor)
    return await tell_lifecycle(request, done)
