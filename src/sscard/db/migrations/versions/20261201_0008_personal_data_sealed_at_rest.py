"""personal data sealed at rest

ID numbers, bank card numbers, old medical card numbers and the values of change
requests are sealed (AES-256-GCM, versioned data keys) and found through blind
indexes (HMAC-SHA256 ``<column>_hash``), which now carry the unique constraints.
Rows already stored are sealed here, in batches, with the keys the application uses
(``sscard.core.protect``): the social side's for the social tables, the bank's own
for the bank's (C-1). Without those keys the upgrade stops and says which is missing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 08:21:13.658155
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import op

from sscard.core.keys import KeyUnavailable
from sscard.core.protect import BANK, SOCIAL, Keyrings, Side, keyrings

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
HASH = sa.String(length=72)


@dataclass(frozen=True)
class Sealed:
    table: str
    column: str
    clear: int  # the column's width before
    sealed: int  # its width now
    nullable: bool
    side: Side
    kind: str | None = None  # the blind index kind, if the column has one
    unique: bool = True


COLUMNS = (
    Sealed("persons", "id_number", 18, 72, False, SOCIAL, "id_number"),
    Sealed("persons", "old_medical_card_no", 32, 88, True, SOCIAL),
    Sealed("cards", "bank_card_number", 19, 72, True, SOCIAL, "bank_card_number"),
    Sealed("change_requests", "old_value", 100, 580, False, SOCIAL),
    Sealed("change_requests", "new_value", 100, 580, False, SOCIAL),
    Sealed("bank_accounts", "bank_card_number", 19, 72, False, BANK, "bank_card_number"),
    Sealed("bank_accounts", "holder_id_number", 18, 72, False, BANK, "id_number", unique=False),
)
TABLES = tuple(dict.fromkeys(c.table for c in COLUMNS))


def _of(table: str) -> list[Sealed]:
    return [c for c in COLUMNS if c.table == table]


def _rings(side: Side) -> Keyrings:
    try:
        return keyrings(side)
    except KeyUnavailable as exc:
        raise KeyUnavailable(
            f"migration 0008 seals the ID and bank card numbers already stored and needs "
            f"the {side.name} side's data and index keys: {exc}"
        ) from None


def _keys_needed() -> dict[str, Keyrings]:
    """The keyrings of each side that has stored values, loaded before any change."""
    conn = op.get_bind()
    needed: dict[str, Keyrings] = {}
    for c in COLUMNS:
        if c.side.name in needed:
            continue
        t = sa.table(c.table, sa.column(c.column, sa.String()))
        stored = sa.select(t.c[c.column]).where(t.c[c.column].is_not(None)).limit(1)
        if conn.execute(stored).first() is not None:
            needed[c.side.name] = _rings(c.side)
    return needed


def _convert(table: str, rings: Keyrings, *, sealing: bool) -> None:
    """Seal (or, going down, open) every stored value of ``table``, batch by batch."""
    columns = _of(table)
    names = [c.column for c in columns]
    hashes = [f"{c.column}_hash" for c in columns if c.kind and sealing]
    t = sa.table(
        table,
        sa.column("id", sa.BigInteger()),
        *(sa.column(n, sa.String()) for n in names + hashes),
    )
    conn = op.get_bind()
    update = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("p_id"))
        .values({n: sa.bindparam(f"p_{n}") for n in names + hashes})
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(t.c.id, *(t.c[n] for n in names))
            .where(t.c.id > last)
            .order_by(t.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        params = []
        for row in rows:
            p: dict[str, object] = {"p_id": row.id}
            for c in columns:
                value = getattr(row, c.column)
                context = f"{table}.{c.column}"
                if value is None:
                    p[f"p_{c.column}"] = None
                elif sealing:
                    p[f"p_{c.column}"] = rings.data.seal(value, context=context)
                else:
                    p[f"p_{c.column}"] = rings.data.open(value, context=context)
                if c.kind and sealing:
                    p[f"p_{c.column}_hash"] = (
                        None if value is None else rings.index.blind(value, kind=c.kind)
                    )
            params.append(p)
        conn.execute(update, params)
        last = rows[-1].id


def upgrade() -> None:
    rings = _keys_needed()
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for c in _of(table):
                if c.kind:
                    batch_op.add_column(sa.Column(f"{c.column}_hash", HASH, nullable=True))
                batch_op.alter_column(
                    c.column,
                    existing_type=sa.String(length=c.clear),
                    type_=sa.String(length=c.sealed),
                    existing_nullable=c.nullable,
                )
    for table in TABLES:
        side = _of(table)[0].side.name
        if side in rings:
            _convert(table, rings[side], sealing=True)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for c in _of(table):
                if not c.kind:
                    continue
                hashed = f"{c.column}_hash"
                batch_op.alter_column(hashed, existing_type=HASH, nullable=c.nullable)
                if c.unique:
                    batch_op.drop_constraint(f"uq_{table}_{c.column}", type_="unique")
                    batch_op.create_unique_constraint(f"uq_{table}_{hashed}", [hashed])
                else:
                    batch_op.drop_index(f"ix_{table}_{c.column}")
                    batch_op.create_index(f"ix_{table}_{hashed}", [hashed], unique=False)


def downgrade() -> None:
    rings = _keys_needed()
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for c in _of(table):
                if not c.kind:
                    continue
                hashed = f"{c.column}_hash"
                if c.unique:
                    batch_op.drop_constraint(f"uq_{table}_{hashed}", type_="unique")
                else:
                    batch_op.drop_index(f"ix_{table}_{hashed}")
                batch_op.drop_column(hashed)
    for table in TABLES:
        side = _of(table)[0].side.name
        if side in rings:
            _convert(table, rings[side], sealing=False)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for c in _of(table):
                batch_op.alter_column(
                    c.column,
                    existing_type=sa.String(length=c.sealed),
                    type_=sa.String(length=c.clear),
                    existing_nullable=c.nullable,
                )
                if c.kind and c.unique:
                    batch_op.create_unique_constraint(f"uq_{table}_{c.column}", [c.column])
                elif c.kind:
                    batch_op.create_index(f"ix_{table}_{c.column}", [c.column], unique=False)
