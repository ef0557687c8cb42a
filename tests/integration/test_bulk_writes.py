"""Big batches of audit records and partner events (a sweeper's) are written whole.

From ``COPY_FROM`` rows on, a plain INSERT batch is a ``COPY`` on PostgreSQL: every
value must come back as an INSERT would have stored it (L-1 lapses at province scale).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, func, select

from sscard.access.model import SYSTEM
from sscard.audit.service import record_many
from sscard.audit.tables import AuditRecord
from sscard.db.statements import COPY_FROM
from sscard.events.tables import OutboxEvent
from tests.factories import World


def test_l_1_a_sweeper_sized_batch_of_audit_records_and_events_is_stored_whole(
    world: World, engine: Engine
) -> None:
    n = COPY_FROM + 50
    sent: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(" ", 1)[0].upper())

    event.listen(engine, "before_cursor_execute", listen)
    at = world.rt.now() - timedelta(minutes=5)
    with world.rt.uow() as uow:
        record_many(
            uow.session,
            actor=SYSTEM,
            at=at,
            action="card.oral_report_lapse",
            subject_type="card",
            channel="system",
            entries=(
                (i, None, {"from": "lost_oral", "to": "active", "n": i, "note": "a\tb\\c\n"})
                for i in range(1, n + 1)
            ),
        )
        uow.commit()
    event.remove(engine, "before_cursor_execute", listen)
    if engine.dialect.name == "postgresql":
        assert sent.count("COPY") == 2  # the records and their partner events
    with world.rt.uow() as uow:
        s = uow.session
        records = s.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "card.oral_report_lapse")
            .order_by(AuditRecord.subject_id)
        ).all()
        events = s.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.type == "card.oral_loss_report_lapsed")
        )
    assert [r.subject_id for r in records] == list(range(1, n + 1))
    assert {r.occurred_at for r in records} == {at}
    assert {(r.kind, r.source, r.channel, r.person_id) for r in records} == {
        ("change", "system", "system", None)
    }
    assert records[41].detail == {"from": "lost_oral", "to": "active", "n": 42, "note": "a\tb\\c\n"}
    assert events == n
