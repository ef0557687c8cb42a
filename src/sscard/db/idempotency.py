"""Idempotency keys: a retried POST replays its first answer instead of acting twice.

One mechanism for every POST, payments included. The record is written in the same
transaction as the change it answers for (``remember``, just before the commit), so a
key is either unused or bound to a committed change with its answer: there is no "in
progress" state to recover from. Two requests racing with one key queue on the
record's unique index on PostgreSQL (SQLite serialises writers): the second finds the
first's record and replays it. The request's unit of work (``api.unit``) drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, String, UniqueConstraint, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from sscard.core.errors import DomainError, InvalidInput
from sscard.db.base import Base, BigId, table
from sscard.db.engine import UnitOfWork
from sscard.db.statements import Prepared

T = TypeVar("T")

HEADER = "Idempotency-Key"


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


_R = table(IdempotencyRecord).c
_EARLIER = Prepared(
    select(_R.fingerprint, _R.status, _R.response).where(
        _R.staff_id == bindparam("staff_id"), _R.key == bindparam("key")
    )
)


_REMEMBER = Prepared(insert(table(IdempotencyRecord)))


class KeyReused(InvalidInput):
    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class Answer:
    """The first answer given to a key: its status and JSON body."""

    status: int
    body: Any


def checked_key(key: str) -> str:
    """An Idempotency-Key of 1 to 255 visible characters, or a refusal naming the header."""
    key = (key or "").strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise InvalidInput(
            "Idempotency-Key must be 1 to 255 printable characters, the same on every retry",
            field=HEADER,
        )
    return key


def earlier(s: Session, *, staff_id: int, key: str, fingerprint: str) -> Answer | None:
    """The first answer to ``key`` (one indexed lookup), None if the key is unused.

    The same key with another request is refused: a client reusing keys would
    otherwise get an answer that is not about its request.
    """
    row = _EARLIER.first(s, {"staff_id": staff_id, "key": key})
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise KeyReused(
            "this Idempotency-Key was used for a different request; use a new key",
            field=HEADER,
        )
    return Answer(status=row.status or 200, body=row.response)


def remember(
    s: Session,
    *,
    staff_id: int,
    key: str,
    fingerprint: str,
    answer: Answer,
    now: datetime,
) -> None:
    """Bind ``key`` to ``answer`` in the caller's transaction (never commits).

    Raises IntegrityError when the same key was remembered at the same moment by a
    concurrent request; the caller then rolls back and replays that one's answer.
    """
    _REMEMBER.run(
        s,
        {
            "staff_id": staff_id,
            "key": key,
            "fingerprint": fingerprint,
            "status": answer.status,
            "response": answer.body,
            "created_at": now,
        },
    )


def once(
    uow: UnitOfWork,
    *,
    staff_id: int,
    key: str,
    fingerprint: str,
    now: datetime,
    act: Callable[[], T],
    render: Callable[[T], Any],
    status: int = 200,
) -> tuple[Answer, bool]:
    """Run ``act`` in the held ``uow`` once per key: ``(answer, replayed)``.

    The first time, ``act`` runs its use case (which calls ``uow.commit()`` when its change
    is complete), its result is rendered, the answer is remembered beside the change, and
    the unit commits once. Afterwards the key replays that answer. A refusal is remembered
    too, with the change it kept (a counted wrong password) or alone, and raised.
    """
    first = earlier(uow.session, staff_id=staff_id, key=key, fingerprint=fingerprint)
    if first is not None:
        uow.finish()
        return first, True
    try:
        result = act()
    except DomainError as refusal:
        _refused(uow, staff_id, key, fingerprint, Answer(refusal.status, refusal.as_problem()), now)
        raise
    answer = Answer(status, render(result))
    if not uow.complete:
        return answer, False  # nothing changed (a read): nothing to remember
    try:
        remember(
            uow.session, staff_id=staff_id, key=key, fingerprint=fingerprint, answer=answer, now=now
        )
    except IntegrityError:  # the same key answered at the same moment: that answer stands
        uow.session.rollback()
        first = earlier(uow.session, staff_id=staff_id, key=key, fingerprint=fingerprint)
        if first is None:  # pragma: no cover - the unique index said it exists
            raise
        return first, True
    uow.finish()
    return answer, False


def _refused(
    uow: UnitOfWork, staff_id: int, key: str, fingerprint: str, answer: Answer, now: datetime
) -> None:
    if not uow.complete:
        uow.session.rollback()  # the refused change goes; its refusal is remembered alone
    try:
        remember(
            uow.session, staff_id=staff_id, key=key, fingerprint=fingerprint, answer=answer, now=now
        )
        uow.finish()
    except IntegrityError:  # a success with this key won the race: it stands
        uow.session.rollback()
