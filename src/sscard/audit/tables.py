"""The audit record: every state change, written in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sscard.db.base import Base, BigId


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime]
    actor_staff_id: Mapped[int | None] = mapped_column(BigId)
    actor_org_id: Mapped[int | None] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(48))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(BigId)
    person_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_records_subject", "subject_type", "subject_id"),
        Index("ix_audit_records_person", "person_id", "occurred_at"),
    )
