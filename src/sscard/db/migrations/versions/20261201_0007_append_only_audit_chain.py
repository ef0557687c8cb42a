"""append-only audit chain: the chain head, sealing and filter indexes, triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 08:20:20.474874

Existing audit records stay as they are and start unsealed; the sealer chains them.
The triggers refuse DELETE and every UPDATE except the sealer's one-time fill of the
three chain columns on an unsealed row (NULL to a value, every other column unchanged).
A later batch migration that recreates ``audit_records`` on SQLite must recreate the
SQLite triggers below.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sscard.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64

PG_FUNCTION = """
CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.chain_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.entry_hash IS NULL
       AND NEW.chain_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL
       AND NEW.entry_hash IS NOT NULL
       AND (to_jsonb(NEW) - 'chain_seq' - 'prev_hash' - 'entry_hash')
           = (to_jsonb(OLD) - 'chain_seq' - 'prev_hash' - 'entry_hash')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'only the sealer fills the chain columns of an unsealed entry';
END
$$
"""

PG_TRIGGER = """
CREATE TRIGGER audit_records_append_only
BEFORE UPDATE OR DELETE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()
"""

# Every column but the chain's own three must stay as it is (IS: NULL-safe equality).
_KEPT = (
    "id",
    "occurred_at",
    "kind",
    "actor_staff_id",
    "actor_org_id",
    "actor_person_id",
    "source",
    "channel",
    "action",
    "subject_type",
    "subject_id",
    "person_id",
    "detail",
)
SQLITE_SEAL_ONLY = f"""
CREATE TRIGGER audit_records_no_update
BEFORE UPDATE ON audit_records
WHEN NOT (
    OLD.chain_seq IS NULL AND OLD.prev_hash IS NULL AND OLD.entry_hash IS NULL
    AND NEW.chain_seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.entry_hash IS NOT NULL
    AND {" AND ".join(f"NEW.{c} IS OLD.{c}" for c in _KEPT)}
)
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: UPDATE refused');
END
"""

SQLITE_NO_DELETE = """
CREATE TRIGGER audit_records_no_delete
BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit_records is append-only: DELETE refused');
END
"""


def upgrade() -> None:
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sscard.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    assert head is not None
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS, "sealed_at": None}])
    op.create_index("ix_audit_records_action", "audit_records", ["action", "id"])
    op.create_index("ix_audit_records_kind", "audit_records", ["kind", "id"])
    op.create_index("ix_audit_records_occurred", "audit_records", ["occurred_at", "id"])
    op.create_index(
        "ix_audit_records_unsealed",
        "audit_records",
        ["id"],
        postgresql_where=sa.text("chain_seq IS NULL"),
        sqlite_where=sa.text("chain_seq IS NULL"),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        op.execute(SQLITE_SEAL_ONLY)
        op.execute(SQLITE_NO_DELETE)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
        op.execute("DROP FUNCTION audit_records_append_only()")
    else:
        op.execute("DROP TRIGGER audit_records_no_delete")
        op.execute("DROP TRIGGER audit_records_no_update")
    op.drop_index("ix_audit_records_unsealed", table_name="audit_records")
    op.drop_index("ix_audit_records_occurred", table_name="audit_records")
    op.drop_index("ix_audit_records_kind", table_name="audit_records")
    op.drop_index("ix_audit_records_action", table_name="audit_records")
    op.drop_table("audit_chain_head")
