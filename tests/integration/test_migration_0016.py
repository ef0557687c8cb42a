"""Migration 0016: the bank's acts move out of the center's audit trail (C-1).

A database at revision 0012, whose bank wrote audit records for its acts, is upgraded:
each existing event of the bank's journal is completed from its audit record (actor,
source, channel; the bank from its account), and the journal is append-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Engine, column, insert, select, table, text
from sqlalchemy.exc import DBAPIError

from sscard.bank.tables import BankAccountEvent
from sscard.db.base import UTCDateTime
from sscard.db.engine import make_engine
from sscard.db.migrate import upgrade
from tests.integration.test_cli import scratch_database

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0012(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with scratch_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine, "0012")
        yield engine
        engine.dispose()


def _insert(conn: Any, name: str, /, **values: Any) -> int:
    typed: dict[str, Any] = {
        "detail": JSON(),
        "occurred_at": UTCDateTime(),
        "opened_at": UTCDateTime(),
    }
    t = table(name, column("id"), *(column(k, typed.get(k)) for k in values))
    new_id: int = conn.execute(insert(t).values(**values).returning(t.c.id)).scalar_one()
    return new_id


def test_c_1_existing_bank_acts_move_to_the_bank_s_own_append_only_record(
    at_0012: Engine,
) -> None:
    with at_0012.begin() as conn:
        account = _insert(
            conn,
            "bank_accounts",
            bank_code="ICBC",
            bank_card_number="sealed-placeholder",
            bank_card_number_hash="h-card",
            serial="SN0000000042",
            card_id=42,
            holder_id_number="sealed-placeholder",
            holder_id_number_hash="h-id",
            state="frozen",
            failed_attempts=0,
            opened_at=AT,
            version=1,
        )
        event: dict[str, Any] = {"account_id": account, "detail": {}}
        activated = _insert(
            conn,
            "bank_account_events",
            **event,
            from_state="issued",
            to_state="active",
            action="activate",
            actor_staff_id=7,
            occurred_at=AT,
        )
        frozen = _insert(
            conn,
            "bank_account_events",
            **event,
            from_state="active",
            to_state="frozen",
            action="freeze",
            actor_staff_id=None,
            occurred_at=LATER,
        )
        audit: dict[str, Any] = {"kind": "change", "subject_type": "bank_account"}
        _insert(
            conn,
            "audit_records",
            **audit,
            occurred_at=AT,
            actor_staff_id=7,
            actor_org_id=70,
            source="10.0.0.1",
            channel="outlet",
            action="bank_account.activate",
            subject_id=account,
            detail={"event_id": activated, "bank_code": "ICBC"},
        )
        _insert(
            conn,
            "audit_records",
            **audit,
            occurred_at=LATER,
            actor_org_id=None,
            source="sweeper",
            channel="center_message",
            action="bank_account.freeze",
            subject_id=account,
            detail={"card_action": "report_lost_oral", "bank_code": "ICBC"},
        )
    upgrade(at_0012)
    with at_0012.connect() as conn:
        rows = conn.execute(
            select(
                BankAccountEvent.id,
                BankAccountEvent.bank_code,
                BankAccountEvent.actor_org_id,
                BankAccountEvent.source,
                BankAccountEvent.channel,
            ).order_by(BankAccountEvent.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (activated, "ICBC", 70, "10.0.0.1", "outlet"),
        (frozen, "ICBC", None, "sweeper", "center_message"),
    ]
    for statement in (
        "UPDATE bank_account_events SET channel = 'forged'",
        "DELETE FROM bank_account_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"), at_0012.begin() as conn:
            conn.execute(text(statement))
