"""the bank's own record of its acts: bank_account_events with actor, channel, source

The bank no longer writes into the center's audit trail (C-1). Its journal,
``bank_account_events``, gains what a bank's own record of its acts needs: the bank,
the acting organization, where the act came from (``source``) and the channel (the
outlet's counter, or ``center_message`` for what the center's messages caused); it
becomes append-only like the audit trail (triggers refuse UPDATE and DELETE).

Existing events are completed from the audit records the bank wrote for them (by the
``event_id`` their detail names, or for the center's messages by account, action and
time). Those audit records stay where they are: the audit trail is append-only and
hash-chained, so removing them would break the chain; they remain the center's record
of the bank's acts before this upgrade, and no new ones are written.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 21:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import sscard.db.base

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CENTER_MESSAGE = "center_message"
FOLLOWED = ("open", "freeze", "unfreeze", "close")  # the acts the center's messages cause

PG_FUNCTION = """
CREATE FUNCTION bank_account_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bank_account_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
PG_TRIGGER = """
CREATE TRIGGER bank_account_events_append_only
BEFORE UPDATE OR DELETE ON bank_account_events
FOR EACH ROW EXECUTE FUNCTION bank_account_events_append_only()
"""
SQLITE_TRIGGERS = [
    f"""
CREATE TRIGGER bank_account_events_no_{op_name.lower()}
BEFORE {op_name} ON bank_account_events
BEGIN
    SELECT RAISE(ABORT, 'bank_account_events is append-only: {op_name} refused');
END
"""
    for op_name in ("UPDATE", "DELETE")
]

events = sa.table(
    "bank_account_events",
    sa.column("id", ID),
    sa.column("account_id", ID),
    sa.column("action", sa.String()),
    sa.column("occurred_at", sscard.db.base.UTCDateTime(timezone=True)),
    sa.column("bank_code", sa.String()),
    sa.column("actor_org_id", ID),
    sa.column("source", sa.String()),
    sa.column("channel", sa.String()),
)
accounts = sa.table("bank_accounts", sa.column("id", ID), sa.column("bank_code", sa.String()))
audit = sa.table(
    "audit_records",
    sa.column("id", ID),
    sa.column("occurred_at", sscard.db.base.UTCDateTime(timezone=True)),
    sa.column("actor_org_id", ID),
    sa.column("source", sa.String()),
    sa.column("channel", sa.String()),
    sa.column("action", sa.String()),
    sa.column("subject_type", sa.String()),
    sa.column("subject_id", ID),
    sa.column("detail", sa.JSON()),
)


def _complete_from_audit(conn: sa.Connection) -> None:
    """Actor, source and channel of each existing event, from its audit record."""
    by_id: list[dict[str, Any]] = []
    by_act: list[dict[str, Any]] = []
    rows = conn.execute(
        sa.select(audit).where(audit.c.subject_type == "bank_account").order_by(audit.c.id)
    )
    for r in rows:
        values = {"org": r.actor_org_id, "src": r.source or "system", "chan": r.channel}
        event_id = (r.detail or {}).get("event_id")
        if isinstance(event_id, int):
            by_id.append({**values, "event": event_id})
        else:
            _, _, verb = r.action.partition(".")
            by_act.append({**values, "acc": r.subject_id, "verb": verb, "at": r.occurred_at})
    fill: dict[str, Any] = {
        "actor_org_id": sa.bindparam("org"),
        "source": sa.bindparam("src"),
        "channel": sa.bindparam("chan"),
    }
    if by_id:
        conn.execute(
            events.update().where(events.c.id == sa.bindparam("event")).values(**fill), by_id
        )
    if by_act:
        conn.execute(
            events.update()
            .where(
                events.c.account_id == sa.bindparam("acc"),
                events.c.action == sa.bindparam("verb"),
                events.c.occurred_at == sa.bindparam("at"),
                events.c.channel.is_(None),
            )
            .values(**fill),
            by_act,
        )
    # Events without an audit record (none were written without one): by their kind.
    conn.execute(
        events.update()
        .where(events.c.channel.is_(None))
        .values(channel=sa.case((events.c.action.in_(FOLLOWED), CENTER_MESSAGE), else_="unknown"))
    )


def upgrade() -> None:
    with op.batch_alter_table("bank_account_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bank_code", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("actor_org_id", ID, nullable=True))
        batch_op.add_column(
            sa.Column("source", sa.String(length=64), server_default="system", nullable=False)
        )
        batch_op.add_column(sa.Column("channel", sa.String(length=20), nullable=True))
    conn = op.get_bind()
    conn.execute(
        events.update().values(
            bank_code=sa.select(accounts.c.bank_code)
            .where(accounts.c.id == events.c.account_id)
            .scalar_subquery()
        )
    )
    _complete_from_audit(conn)
    with op.batch_alter_table("bank_account_events", schema=None) as batch_op:
        batch_op.alter_column("bank_code", existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column("channel", existing_type=sa.String(length=20), nullable=False)
        batch_op.create_index("ix_bank_account_events_bank", ["bank_code", "id"], unique=False)
    if conn.dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER bank_account_events_append_only ON bank_account_events")
        op.execute("DROP FUNCTION bank_account_events_append_only()")
    else:
        op.execute("DROP TRIGGER bank_account_events_no_update")
        op.execute("DROP TRIGGER bank_account_events_no_delete")
    with op.batch_alter_table("bank_account_events", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_account_events_bank")
        batch_op.drop_column("channel")
        batch_op.drop_column("source")
        batch_op.drop_column("actor_org_id")
        batch_op.drop_column("bank_code")
