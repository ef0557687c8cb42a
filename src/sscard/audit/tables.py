"""The audit record: every state change, written in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from sscard.db.base import Base, BigId

UNSEALED = "chain_seq IS NULL"


class ChainHash(TypeDecorator[str]):
    """A chain hash: 64 hex digits in Python; its 32 raw bytes (``bytea``) on PostgreSQL,
    the hex text on SQLite."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(LargeBinary())
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        return bytes.fromhex(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return bytes(value).hex()


class AuditRecord(Base):
    """One entry of the trail. Append-only; ``chain_seq``/``entry_hash`` chain it.

    ``kind`` is an ``AuditKind``; ``source`` is where the act came from (client
    address, ``cli``, ``sweeper``); ``actor_person_id`` is the cardholder acting in
    self-service. The chain columns are filled when the entry is sealed.

    On PostgreSQL the table is partitioned by month of ``occurred_at`` (migration 0015;
    ``audit.partitions`` creates months ahead), so its primary key is ``(id,
    occurred_at)``; ``id`` alone identifies an entry. Only the indexes its queries need:
    the key (cursor pages, the sealer's updates), ``person_id`` (a holder's access log,
    the center's filter by person), ``chain_seq`` (verification's walk) and the sealer's
    small queue of unsealed entries. The other filters of ``GET /audit/records`` scan
    newest first within the months asked for.
    """

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(BigId, autoincrement=True)
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
    chain_seq: Mapped[int | None] = mapped_column(BigId)
    prev_hash: Mapped[str | None] = mapped_column(ChainHash())
    entry_hash: Mapped[str | None] = mapped_column(ChainHash())

    __table_args__ = (
        # SQLite keeps ``id`` alone (its rowid); see the migration.
        PrimaryKeyConstraint("id", "occurred_at"),
        # A holder's access log and the center's filter by person (few rows a person:
        # deduplicated in the index, sorted by id when read).
        Index("ix_audit_records_person", "person_id"),
        # Verification walks the chain in seq order (unique by the sealer's head lock).
        # BRIN on PostgreSQL: seqs are given in the order entries were written.
        Index("ix_audit_records_chain_seq", "chain_seq", postgresql_using="brin"),
        # The sealer's queue: small however large the trail grows.
        Index(
            "ix_audit_records_unsealed",
            "id",
            postgresql_where=text(UNSEALED),
            sqlite_where=text(UNSEALED),
        ),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )
    __mapper_args__ = {"primary_key": [id]}


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
