"""The transactional outbox: every audited state change stages its partner event.

``stage``/``stage_many`` are called by ``audit.service.record``/``record_many`` for
every ``AuditKind.CHANGE``, inside the change's transaction, so an event commits or
rolls back with it. ``events.fanout`` later resolves the scope and queues deliveries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, Subquery, insert, select
from sqlalchemy.orm import Session

from sscard.db.base import UTCDateTime, table
from sscard.db.bulk import const, json_object
from sscard.db.statements import Prepared
from sscard.events.model import event_type, scrub
from sscard.events.tables import OutboxEvent

PENDING, DELIVERED, DEAD, REDELIVERED = "pending", "delivered", "dead", "redelivered"
_INSERT = Prepared(insert(table(OutboxEvent)))


def _row(
    *,
    at: datetime,
    action: str,
    subject_type: str,
    subject_id: int | None,
    person_id: int | None,
    actor_org_id: int | None,
    detail: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    type_ = event_type(action)
    if type_ is None:
        return None
    detail = dict(detail or {})
    bank = detail.get("bank_code")
    unit = detail.get("unit_org_id")
    return {
        "type": type_,
        "occurred_at": at,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "person_id": person_id,
        "actor_org_id": actor_org_id,
        # Scope hints the change already knows; the fan-out resolves the rest.
        "bank_code": bank if isinstance(bank, str) else None,
        "unit_org_id": unit if isinstance(unit, int) else None,
        "detail": scrub(detail),
    }


def stage(session: Session, **change: Any) -> None:
    """Add the partner event of one audited change to its transaction (never commits)."""
    stage_many(session, [change])


def stage_many(session: Session, changes: Iterable[Mapping[str, Any]]) -> None:
    """The partner events of a batch of audited changes, in one INSERT (never commits)."""
    rows = [r for r in (_row(**c) for c in changes) if r is not None]
    if rows:
        _INSERT.run_many(session, rows)


def stage_select(
    session: Session,
    rows: Subquery,
    *,
    at: datetime,
    action: str,
    subject_type: str,
    actor_org_id: int | None,
    detail: Mapping[str, str | int],
) -> None:
    """The partner events of a set-based batch of changes, in one INSERT … SELECT over
    ``rows`` (``subject_id``, ``person_id``, then per-row detail values, which are
    numbers or short codes: only the shared ``detail`` needs scrubbing; never commits)."""
    shared = _row(
        at=at,
        action=action,
        subject_type=subject_type,
        subject_id=None,
        person_id=None,
        actor_org_id=actor_org_id,
        detail=detail,
    )
    if shared is None:  # not a partner event
        return
    per_row = {c.key: c for c in rows.c if c.key not in ("subject_id", "person_id")}
    values = {
        "type": const(session, shared["type"], String()),
        "occurred_at": const(session, at, UTCDateTime()),
        "subject_type": const(session, subject_type, String()),
        "subject_id": rows.c.subject_id,
        "person_id": rows.c.person_id,
        "actor_org_id": const(session, actor_org_id, BigInteger()),
        "bank_code": const(session, shared["bank_code"], String()),
        "unit_org_id": const(session, shared["unit_org_id"], BigInteger()),
        "detail": json_object(session, shared["detail"] | per_row),
    }
    session.execute(
        insert(table(OutboxEvent)).from_select(
            list(values), select(*values.values()).order_by(rows.c.subject_id)
        )
    )
