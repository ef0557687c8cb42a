"""The bank's own tables: financial accounts and their history (C-1).

No foreign key reaches the social security side's tables: ``card_id`` is the center's
card id kept as an opaque reference from its messages, and ``holder_id_number`` is the
bank's own customer (KYC) data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sscard.core.protect import BANK, BANK_CARD_NUMBER, ID_NUMBER
from sscard.db.base import Base, BigId
from sscard.db.types import EncryptedString, blind_index, keep_blind_index


class BankAccount(Base):
    """The financial application of one card: a bank debit account."""

    __tablename__ = "bank_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    # Sealed with the bank's own data key (C-1); found through bank_card_number_hash.
    bank_card_number: Mapped[str] = mapped_column(
        EncryptedString(
            19, side=BANK, context="bank_accounts.bank_card_number", index_kind=BANK_CARD_NUMBER
        )
    )
    bank_card_number_hash: Mapped[str] = blind_index(
        "bank_card_number", side=BANK, kind=BANK_CARD_NUMBER
    )
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    card_id: Mapped[int] = mapped_column(BigId, unique=True)
    holder_id_number: Mapped[str] = mapped_column(
        EncryptedString(
            18, side=BANK, context="bank_accounts.holder_id_number", index_kind=ID_NUMBER
        )
    )
    holder_id_number_hash: Mapped[str] = blind_index(
        "holder_id_number", side=BANK, kind=ID_NUMBER, unique=False
    )
    state: Mapped[str] = mapped_column(String(16))
    state_before_freeze: Mapped[str | None] = mapped_column(String(16))
    # argon2id over HMAC(bank key, password); never the password itself (P-1, C-1).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    opened_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    frozen_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # A bank's account list walks its accounts by id.
        Index("ix_bank_accounts_bank_id", "bank_code", "id"),
    )


keep_blind_index(BankAccount.bank_card_number, side=BANK, kind=BANK_CARD_NUMBER)
keep_blind_index(BankAccount.holder_id_number, side=BANK, kind=ID_NUMBER)


class BankAccountEvent(Base):
    """The bank's own record of its acts on one account: state moves and password events.

    Append-only (triggers refuse UPDATE and DELETE): who acted (staff, organization,
    where from), through which channel (an outlet's counter, or ``center_message`` for
    what the center's messages caused), what and when. The bank keeps it apart from the
    center's audit trail (C-1); partners learn of the acts through the bank's
    ``BankAccountsChanged`` message. Personal numbers never enter ``detail`` unmasked.
    """

    __tablename__ = "bank_account_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("bank_accounts.id"))
    bank_code: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    actor_staff_id: Mapped[int | None] = mapped_column(BigId)
    actor_org_id: Mapped[int | None] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(64), default="system", server_default="system")
    channel: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_bank_account_events_account", "account_id", "id"),
        # A bank's own record of its acts, walked by id.
        Index("ix_bank_account_events_bank", "bank_code", "id"),
    )
