"""Tables: cards, their transition records, fees and payment vouchers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sscard.core.protect import BANK_CARD_NUMBER, SOCIAL
from sscard.db.base import Base, BigId
from sscard.db.types import EncryptedString, blind_index, keep_blind_index

SET_FOR_A_WHILE = ("oral_loss_lapses_at", "at_outlet_since", "handout_due")


class Card(Base):
    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    state_before_loss: Mapped[str | None] = mapped_column(String(16))
    card_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    serial: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Sealed with the social side's data key; unique through bank_card_number_hash.
    bank_card_number: Mapped[str | None] = mapped_column(
        EncryptedString(
            19, side=SOCIAL, context="cards.bank_card_number", index_kind=BANK_CARD_NUMBER
        )
    )
    bank_card_number_hash: Mapped[str | None] = blind_index(
        "bank_card_number", side=SOCIAL, kind=BANK_CARD_NUMBER, nullable=True
    )
    outlet_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    unit_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    ordered_at: Mapped[datetime]
    ready_on: Mapped[date] = mapped_column(Date)
    ready_provisional: Mapped[bool] = mapped_column(default=False)
    produced_at: Mapped[datetime | None]
    valid_until: Mapped[date | None] = mapped_column(Date)
    at_outlet_since: Mapped[datetime | None]
    picked_up_at: Mapped[datetime | None]
    handout_due: Mapped[date | None] = mapped_column(Date)
    received_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    activation_channel: Mapped[str | None] = mapped_column(String(20))
    financial_activated_at: Mapped[datetime | None]
    loss_reported_at: Mapped[datetime | None]
    oral_loss_lapses_at: Mapped[datetime | None]
    written_report_no: Mapped[str | None] = mapped_column(String(32))
    old_card_restricted_at: Mapped[datetime | None]
    handout_overdue_at: Mapped[datetime | None]
    replaced_by_card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # Deadline sweeps: each scans its due column. A due column set only for a while
        # (an oral report, a card waiting at the outlet, a unit's hand-out) has a partial
        # index of the cards it is set for: ``col < :t`` implies ``col IS NOT NULL``.
        *(
            Index(
                f"ix_cards_{column}",
                column,
                postgresql_where=text(f"{column} IS NOT NULL"),
                sqlite_where=text(f"{column} IS NOT NULL"),
            )
            for column in SET_FOR_A_WHILE
        ),
        Index("ix_cards_state_received", "state", "received_at"),
        # A bank's or a unit's card list walks its cards by id (cursor pagination, S-1).
        Index("ix_cards_bank_id", "bank_code", "id"),
        # A bank's own customers (S-1 scope of GET /persons): a semi-join walks it in
        # person order, whatever the bank's share of the region.
        Index("ix_cards_bank_person", "bank_code", "person_id"),
        Index("ix_cards_unit_id", "unit_org_id", "id"),
    )


keep_blind_index(Card.bank_card_number, side=SOCIAL, kind=BANK_CARD_NUMBER)


class CardTransition(Base):
    """One move of one card: from, to, action, channel, reason, place, actor, time."""

    __tablename__ = "card_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))  # no query by it
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(20))
    reason_code: Mapped[str | None] = mapped_column(String(48))
    place_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    actor_staff_id: Mapped[int | None] = mapped_column(BigId)
    agent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    occurred_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_card_transitions_card", "card_id", "id"),)


class Fee(Base):
    """A fee decided by F-1/F-2, with its payment voucher (缴费凭证) when not free."""

    __tablename__ = "fees"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))  # no query by it
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    basis: Mapped[str] = mapped_column(String(24))
    amount_fen: Mapped[int]
    voucher_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    paid_at: Mapped[datetime]
    place_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
