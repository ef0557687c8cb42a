"""bank accounts: the issuing bank's financial application (C-1)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sscard.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No foreign key reaches the social security side: card_id is an opaque reference.
    op.create_table(
        "bank_accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("bank_card_number", sa.String(length=19), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("holder_id_number", sa.String(length=18), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_before_freeze", sa.String(length=16), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_at", sscard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sscard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sscard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("frozen_at", sscard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sscard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_accounts")),
        sa.UniqueConstraint("bank_card_number", name=op.f("uq_bank_accounts_bank_card_number")),
        sa.UniqueConstraint("card_id", name=op.f("uq_bank_accounts_card_id")),
        sa.UniqueConstraint("serial", name=op.f("uq_bank_accounts_serial")),
    )
    with op.batch_alter_table("bank_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_bank_accounts_bank_id", ["bank_code", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_bank_accounts_holder_id_number"), ["holder_id_number"], unique=False
        )

    op.create_table(
        "bank_account_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "actor_staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("occurred_at", sscard.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["bank_accounts.id"],
            name=op.f("fk_bank_account_events_account_id_bank_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_account_events")),
    )
    with op.batch_alter_table("bank_account_events", schema=None) as batch_op:
        batch_op.create_index("ix_bank_account_events_account", ["account_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bank_account_events", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_account_events_account")

    op.drop_table("bank_account_events")
    with op.batch_alter_table("bank_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_accounts_holder_id_number"))
        batch_op.drop_index("ix_bank_accounts_bank_id")

    op.drop_table("bank_accounts")
