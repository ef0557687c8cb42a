"""Tables: unit batches, application registration forms, change requests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sscard.core.protect import SOCIAL
from sscard.db.base import Base, BigId
from sscard.db.types import EncryptedString


class Batch(Base):
    """A unit's bundle of application forms (A-2), issued in stages (A-4)."""

    __tablename__ = "application_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    service_point_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    stage: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16))
    bank_code: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime]
    return_due: Mapped[date] = mapped_column(Date)
    returned_at: Mapped[datetime | None]
    checked_at: Mapped[datetime | None]
    overdue_at: Mapped[datetime | None]
    collected_by: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_application_batches_state_due", "state", "return_due"),)


class Application(Base):
    """One application registration form (社会保障卡申领登记表), unique to its person."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    form_number: Mapped[str] = mapped_column(String(24), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("application_batches.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    bank_code: Mapped[str] = mapped_column(String(16))
    service_point_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    outlet_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    photo_source: Mapped[str | None] = mapped_column(String(24))
    photo_receipt_no: Mapped[str | None] = mapped_column(String(40))
    photo_studio_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    # The values printed on the form, as corrected by the insured (A-2 step 4).
    form_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    corrections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    return_due: Mapped[date | None] = mapped_column(Date)
    issued_at: Mapped[datetime]
    returned_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(String(300))
    # The card this form replaces or changes (cards.id; no FK: cards point back here).
    replaces_card_id: Mapped[int | None] = mapped_column(BigId)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # at most one open form per person.
        Index(
            "uq_applications_open_per_person",
            "person_id",
            unique=True,
            postgresql_where=text("state IN ('issued', 'returned')"),
            sqlite_where=text("state IN ('issued', 'returned')"),
        ),
    )


class ChangeRequest(Base):
    """ID-4: a change of name or ID number at the social insurance agency."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    field_name: Mapped[str] = mapped_column(String(16))
    # Names or ID numbers: sealed (personal data at rest), never searched.
    old_value: Mapped[str] = mapped_column(
        EncryptedString(100, side=SOCIAL, context="change_requests.old_value", bytes_per_char=4)
    )
    new_value: Mapped[str] = mapped_column(
        EncryptedString(100, side=SOCIAL, context="change_requests.new_value", bytes_per_char=4)
    )
    document: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(BigId)
    submitted_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(BigId)
    decline_reason: Mapped[str | None] = mapped_column(String(300))
    card_change_done: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
