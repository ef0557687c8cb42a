"""The audit record: every state change, written in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sscard.db.base import Base, BigId

UNSEALED = "chain_seq IS NULL"


class AuditRecord(Base):
    """One entry of the trail. Append-only; ``chain_seq``/``entry_hash`` chain it.

    ``kind`` is an ``AuditKind``; ``source`` is where the act came from (client
    address, ``cli``, ``sweeper``); ``actor_person_id`` is the cardholder acting in
    self-service. The chain columns are filled when the entry is sealed.
    """

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(12), default="change", server_default="change")
    actor_staff_id: Mapped[int | None] = mapped_column(BigId)
    actor_org_id: Mapped[int | None] = mapped_column(BigId)
    actor_person_id: Mapped[int | None] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(64), default="system", server_default="system")
    channel: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(48))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The hash chain: position, the previous entry's hash and this entry's hash.
    chain_seq: Mapped[int | None] = mapped_column(BigId, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_records_subject", "subject_type", "subject_id"),
        Index("ix_audit_records_person", "person_id", "occurred_at"),
        Index("ix_audit_records_person_kind", "person_id", "kind", "id"),
        Index("ix_audit_records_actor_org", "actor_org_id", "id"),
        # The sealer's queue: small however large the trail grows.
        Index(
            "ix_audit_records_unsealed",
            "id",
            postgresql_where=text(UNSEALED),
            sqlite_where=text(UNSEALED),
        ),
        # GET /audit/records filters.
        Index("ix_audit_records_action", "action", "id"),
        Index("ix_audit_records_kind", "kind", "id"),
        Index("ix_audit_records_occurred", "occurred_at", "id"),
    )


class AuditChainHead(Base):
    """The chain's head: the last sealed entry's seq and hash (one row, ``id`` 1).

    Sealers lock this row (``FOR UPDATE`` on PostgreSQL) for their batch, so two of them
    never give out the same seq or fork the chain; writers of entries never touch it.
    """

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigId, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)
