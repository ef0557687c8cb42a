"""Writing audit records inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, String, insert, select
from sqlalchemy.orm import Session

from sscard.access.model import Actor
from sscard.audit.model import AuditKind
from sscard.audit.tables import AuditRecord
from sscard.db.base import UTCDateTime, table
from sscard.db.bulk import const, json_object
from sscard.db.statements import Prepared
from sscard.events import outbox


def record(
    session: Session,
    *,
    actor: Actor,
    at: datetime,
    action: str,
    subject_type: str,
    subject_id: int | None,
    person_id: int | None = None,
    channel: str = "system",
    detail: dict[str, Any] | None = None,
    kind: AuditKind = AuditKind.CHANGE,
) -> None:
    """Add one audit record to the current transaction (never commits)."""
    record_rows(
        session,
        [
            AuditRow(
                actor=actor,
                at=at,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                person_id=person_id,
                channel=channel,
                detail=detail or {},
                kind=kind,
            )
        ],
    )


AuditEntry = tuple[int | None, int | None, dict[str, Any]]
"""One audited subject: (subject id, person id, detail)."""


def record_many(
    session: Session,
    *,
    actor: Actor,
    at: datetime,
    action: str,
    subject_type: str,
    channel: str,
    entries: Iterable[AuditEntry],
    kind: AuditKind = AuditKind.CHANGE,
) -> None:
    """Add one audit record per entry in a single INSERT (set-based paths; never commits)."""
    record_rows(
        session,
        [
            AuditRow(
                actor=actor,
                at=at,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                person_id=person_id,
                channel=channel,
                detail=detail,
                kind=kind,
            )
            for subject_id, person_id, detail in entries
        ],
    )


_INSERT = Prepared(insert(table(AuditRecord)))


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit record of a batch whose records have different actors or actions."""

    actor: Actor
    at: datetime
    action: str
    subject_type: str
    subject_id: int | None
    person_id: int | None
    channel: str
    detail: dict[str, Any]
    kind: AuditKind = AuditKind.CHANGE


def slim(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail as stored: keys whose value is None are left out (absent reads as None)."""
    return {k: v for k, v in detail.items() if v is not None}


def record_rows(session: Session, rows: Sequence[AuditRow]) -> None:
    """Add ``rows`` with one INSERT, and their partner events with one more (never commits).

    Plain table INSERTs on the session's connection: no ORM objects to track or flush.
    """
    if not rows:
        return
    details = [slim(r.detail) for r in rows]
    _INSERT.run_many(
        session,
        [
            {
                "occurred_at": r.at,
                "kind": r.kind.value,
                "actor_staff_id": r.actor.staff_id,
                "actor_org_id": r.actor.org_id,
                "actor_person_id": r.actor.person_id,
                "source": r.actor.source,
                "channel": r.channel,
                "action": r.action,
                "subject_type": r.subject_type,
                "subject_id": r.subject_id,
                "person_id": r.person_id,
                "detail": detail,
            }
            for r, detail in zip(rows, details, strict=True)
        ],
    )
    changes = [(r, d) for r, d in zip(rows, details, strict=True) if r.kind is AuditKind.CHANGE]
    if changes:  # their partner events, in one more INSERT
        outbox.stage_many(
            session,
            (
                {
                    "at": r.at,
                    "action": r.action,
                    "subject_type": r.subject_type,
                    "subject_id": r.subject_id,
                    "person_id": r.person_id,
                    "actor_org_id": r.actor.org_id,
                    "detail": detail,
                }
                for r, detail in changes
            ),
        )


def record_select(
    session: Session,
    *,
    actor: Actor,
    at: datetime,
    action: str,
    subject_type: str,
    channel: str,
    rows: Select[Any],
    detail: Mapping[str, str | int] | None = None,
) -> None:
    """One change record per row of ``rows`` with one INSERT … SELECT, and their partner
    events with one more (bulk paths: no row goes through Python; never commits).

    ``rows`` gives ``subject_id``, ``person_id`` and, under their detail keys, each
    record's own detail values (numbers or short codes, never personal data);
    ``detail`` holds the values every record shares.
    """
    found = rows.subquery()
    per_row = {c.key: c for c in found.c if c.key not in ("subject_id", "person_id")}
    audit = table(AuditRecord)
    values = {
        "occurred_at": const(session, at, UTCDateTime()),
        "kind": const(session, AuditKind.CHANGE.value, String()),
        "actor_staff_id": const(session, actor.staff_id, BigInteger()),
        "actor_org_id": const(session, actor.org_id, BigInteger()),
        "actor_person_id": const(session, actor.person_id, BigInteger()),
        "source": const(session, actor.source, String()),
        "channel": const(session, channel, String()),
        "action": const(session, action, String()),
        "subject_type": const(session, subject_type, String()),
        "subject_id": found.c.subject_id,
        "person_id": found.c.person_id,
        "detail": json_object(session, dict(detail or {}) | per_row),
    }
    session.execute(
        insert(audit).from_select(
            list(values), select(*values.values()).order_by(found.c.subject_id)
        )
    )
    outbox.stage_select(
        session,
        found,
        at=at,
        action=action,
        subject_type=subject_type,
        actor_org_id=actor.org_id,
        detail=detail or {},
    )
