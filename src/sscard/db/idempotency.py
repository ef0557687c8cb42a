"""Idempotency keys: a retried POST replays its first answer instead of acting twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from sscard.core.errors import Conflict, InvalidInput
from sscard.db.base import Base, BigId
from sscard.db.engine import SessionFactory, UnitOfWork


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(BigId)
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("staff_id", "key"),)


class KeyReused(InvalidInput):
    code = "idempotency_key_reused"


class KeyInProgress(Conflict):
    code = "idempotency_in_progress"


def claim(
    factory: SessionFactory, *, staff_id: int, key: str, fingerprint: str, now: datetime
) -> IdempotencyRecord | None:
    """Claim ``key`` for a new request; return the earlier record if it was used before."""
    if not key or len(key) > 255:
        raise InvalidInput("Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key")
    with UnitOfWork(factory) as uow:
        uow.session.add(
            IdempotencyRecord(staff_id=staff_id, key=key, fingerprint=fingerprint, created_at=now)
        )
        try:
            uow.commit()
            return None
        except IntegrityError:
            uow.session.rollback()
        earlier = uow.session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.staff_id == staff_id, IdempotencyRecord.key == key
            )
        ).one()
    if earlier.fingerprint != fingerprint:
        raise KeyReused(
            "this Idempotency-Key was used for a different request; use a new key",
            field="Idempotency-Key",
        )
    if earlier.status is None:
        raise KeyInProgress("the first request with this Idempotency-Key is still running")
    return earlier


def finish(
    factory: SessionFactory, *, staff_id: int, key: str, status: int, response: dict[str, Any]
) -> None:
    with UnitOfWork(factory) as uow:
        record = uow.session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.staff_id == staff_id, IdempotencyRecord.key == key
            )
        ).one()
        record.status, record.response = status, response
        uow.commit()


def release(factory: SessionFactory, *, staff_id: int, key: str) -> None:
    """Forget a claim whose request failed unexpectedly, so a retry can run."""
    with UnitOfWork(factory) as uow:
        uow.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.staff_id == staff_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.status.is_(None),
            )
        )
        uow.commit()
