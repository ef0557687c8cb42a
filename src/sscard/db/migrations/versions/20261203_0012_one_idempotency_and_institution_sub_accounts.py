"""one idempotency mechanism; institution sub-accounts against hot rows

Payments keep their Idempotency-Key in ``idempotency_records`` like every other POST,
written in the payment's own transaction: ``ledger_txns`` loses its own copy
(``request_key``, ``request_fingerprint`` and their unique constraint). A key used for
a payment before this upgrade is not replayed afterwards; retries come within minutes,
so upgrade when no terminal is retrying.

An institution's ledger account is split into sub-accounts (``shard``), so settlements
at one hospital no longer queue on one row; the existing account becomes sub-account 0.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shard", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.drop_index("uq_ledger_accounts_org")
        batch_op.create_index(
            "uq_ledger_accounts_org",
            ["kind", "org_id", "shard"],
            unique=True,
            postgresql_where=sa.text("org_id IS NOT NULL"),
            sqlite_where=sa.text("org_id IS NOT NULL"),
        )
    with op.batch_alter_table("ledger_txns", schema=None) as batch_op:
        batch_op.drop_constraint("uq_ledger_txns_org_id", type_="unique")
        batch_op.drop_column("request_fingerprint")
        batch_op.drop_column("request_key")


def downgrade() -> None:
    with op.batch_alter_table("ledger_txns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_ledger_txns_org_id", ["org_id", "request_key"])
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index("uq_ledger_accounts_org")
        batch_op.create_index(
            "uq_ledger_accounts_org",
            ["kind", "org_id"],
            unique=True,
            postgresql_where=sa.text("org_id IS NOT NULL"),
            sqlite_where=sa.text("org_id IS NOT NULL"),
        )
        batch_op.drop_column("shard")
