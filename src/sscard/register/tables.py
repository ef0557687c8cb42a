"""Tables of the register: organizations, units, persons, person records."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sscard.core.protect import ID_NUMBER, SOCIAL
from sscard.db.base import Base, BigId
from sscard.db.types import EncryptedString, blind_index, keep_blind_index


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    bank_code: Mapped[str | None] = mapped_column(String(16), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    # Services the center has extended to this organization (P-3, 002): e.g. a
    # pharmacy authorised for password changes, a platform for activation.
    authorisations: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    created_at: Mapped[datetime]


class Unit(Base):
    """An insured unit (employer): its USCC, kind and card-issuing agreement (B-2)."""

    __tablename__ = "units"

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    unit_kind: Mapped[str] = mapped_column(String(32))
    agreement_bank_code: Mapped[str | None] = mapped_column(String(16))
    agreement_signed_at: Mapped[datetime | None]


class Person(Base):
    """An insured person (参保人): ID-1 to ID-3."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Sealed (personal data at rest); found and kept unique through id_number_hash.
    id_number: Mapped[str] = mapped_column(
        EncryptedString(18, side=SOCIAL, context="persons.id_number", index_kind=ID_NUMBER)
    )
    id_number_hash: Mapped[str] = blind_index("id_number", side=SOCIAL, kind=ID_NUMBER)
    id_kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    gender: Mapped[str] = mapped_column(String(8))
    birth_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20))
    unit_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    medical_scheme: Mapped[str] = mapped_column(String(16), default="employee")
    insured_since: Mapped[date | None] = mapped_column(Date)
    old_medical_card_no: Mapped[str | None] = mapped_column(
        EncryptedString(32, side=SOCIAL, context="persons.old_medical_card_no")
    )
    old_medical_card_state: Mapped[str] = mapped_column(String(16), default="none")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    # A unit's list of its people walks them by id (cursor pagination, S-1).
    __table_args__ = (Index("ix_persons_unit_id", "unit_org_id", "id"),)


keep_blind_index(Person.id_number, side=SOCIAL, kind=ID_NUMBER)


class PersonRecord(Base):
    """ID-3: qualifications, work history, work injuries, occupational diseases."""

    __tablename__ = "person_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    started_on: Mapped[date | None] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_person_records_person_kind", "person_id", "kind"),)
