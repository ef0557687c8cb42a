"""Tables of the medical personal account: ledger, contributions, consumption password."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sscard.db.base import Base, BigId


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    # An institution's sub-account (``ledger.INSTITUTION_SHARDS`` of them spread its
    # settlements over several rows); 0 for every other account.
    shard: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    # Kept equal to the sum of the entries in the same statement that adds them;
    # `sscard ledger check` proves it.
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index(
            "uq_ledger_accounts_person",
            "kind",
            "person_id",
            unique=True,
            postgresql_where=text("person_id IS NOT NULL"),
            sqlite_where=text("person_id IS NOT NULL"),
        ),
        Index(
            "uq_ledger_accounts_org",
            "kind",
            "org_id",
            "shard",
            unique=True,
            postgresql_where=text("org_id IS NOT NULL"),
            sqlite_where=text("org_id IS NOT NULL"),
        ),
        # One region-wide account per kind (the legacy system's balances).
        Index(
            "uq_ledger_accounts_system",
            "kind",
            unique=True,
            postgresql_where=text("person_id IS NULL AND org_id IS NULL"),
            sqlite_where=text("person_id IS NULL AND org_id IS NULL"),
        ),
    )


class LedgerTxn(Base):
    """One business event; its entries sum to zero."""

    __tablename__ = "ledger_txns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    refund_of_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_txns.id"))
    actor_staff_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        # A settlement is refunded once, even when two refunds race.
        Index(
            "uq_ledger_txns_refund_of",
            "refund_of_id",
            unique=True,
            postgresql_where=text("refund_of_id IS NOT NULL"),
            sqlite_where=text("refund_of_id IS NOT NULL"),
        ),
    )


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    txn_id: Mapped[int] = mapped_column(ForeignKey("ledger_txns.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # + credit, - debit
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_ledger_entries_account", "account_id", "id"),)


class Contribution(Base):
    """A month's credit to a personal account from a unit's contribution file."""

    __tablename__ = "contributions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    unit_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    month: Mapped[str] = mapped_column(String(7))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    txn_id: Mapped[int] = mapped_column(ForeignKey("ledger_txns.id"))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("person_id", "unit_org_id", "month"),
        Index("ix_contributions_person", "person_id", "month"),
    )


class MedicalPassword(Base):
    """The consumption password of the social security application (P-1), hashed."""

    __tablename__ = "medical_passwords"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None]
    set_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
