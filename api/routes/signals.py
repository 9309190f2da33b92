"""Signal ingestion in batches: validated whole before anything is stored, idempotent
by the client's own id, so a batch sent twice adds nothing the second time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import EngineDep, ManagerDep
from api.errors import ApiError
from db.ingest import FutureSignal, UnknownContact, UnknownGoal, record_signals
from db.queries import CustomerNotFound
from models.signals import SignalIn

router = APIRouter(prefix="/signals", tags=["signals"])


class SignalBatch(BaseModel):
    signals: Annotated[list[SignalIn], Field(min_length=1, max_length=5000)]


class BatchReceipt(BaseModel):
    received: int
    added: int
    duplicates: int


@router.post("", response_model=BatchReceipt)
def ingest(batch: SignalBatch, engine: EngineDep, _: ManagerDep) -> BatchReceipt:
    try:
        added = record_signals(engine, batch.signals, received_at=datetime.now(UTC))
    except CustomerNotFound as error:
        raise ApiError(404, "not_found", str(error), "signals.customer_id") from None
    except UnknownGoal as error:
        raise ApiError(422, "invalid", str(error), f"signals.{error.index}.goal_key") from None
    except UnknownContact as error:
        raise ApiError(422, "invalid", str(error), f"signals.{error.index}.contact") from None
    except FutureSignal as error:
        field = f"signals.{error.index}.observed_at"
        raise ApiError(422, "invalid", str(error), field) from None
    return BatchReceipt(
        received=len(batch.signals), added=added, duplicates=len(batch.signals) - added
    )
