"""Migration 0015 on a database whose audit trail is already chained.

A database is built at revision 0012, given a chained trail with raw SQL (hashes as
revision 0012 stored them: 64 hex characters), then upgraded to head: every entry
keeps its id, columns and hashes, the chain verifies as before, new entries continue
it, and on PostgreSQL the trail is partitioned by month and append-only on every
partition. On a fresh SQLite file and a fresh PostgreSQL database each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import column, insert, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from sscard.access.model import SYSTEM
from sscard.audit.chain import GENESIS, ChainEntry, link
from sscard.audit.partitions import add_partitions
from sscard.audit.sealer import seal
from sscard.audit.service import record
from sscard.audit.tables import AuditRecord
from sscard.audit.verification import verify
from sscard.bootstrap import prepare
from sscard.core.clock import FixedClock
from sscard.core.keys import load_key
from sscard.db.engine import make_engine
from sscard.db.migrate import alembic_config, upgrade
from tests.integration.test_cli import scratch_database

# Two months of entries: the oldest is months before the migration runs.
FIRST = datetime(2026, 9, 28, 1, 0, tzinfo=UTC)
ENTRIES = 6
COLUMNS = (
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
    "chain_seq",
    "prev_hash",
    "entry_hash",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0012(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine, "0012")
        engine.dispose()
        yield url


def _chained_trail(url: str) -> list[dict[str, Any]]:
    """``ENTRIES`` entries a week apart, sealed as revision 0012 sealed them."""
    entries = [
        ChainEntry(
            id=i,
            occurred_at=FIRST + timedelta(days=7 * (i - 1)),
            kind="change",
            actor_staff_id=None,
            actor_org_id=i,
            actor_person_id=None,
            source="system",
            channel="system",
            action="card.activated",
            subject_type="card",
            subject_id=100 + i,
            person_id=200 + i,
            detail={"from": "received", "to": "active"},
            chain_seq=i,
        )
        for i in range(1, ENTRIES + 1)
    ]
    sealed = link(load_key("audit"), last_seq=0, last_hash=GENESIS, entries=entries)
    rows = [
        {
            **{c: getattr(e, c) for c in COLUMNS[:-2]},
            "detail": '{"from": "received", "to": "active"}',
            "prev_hash": s.prev_hash,
            "entry_hash": s.entry_hash,
        }
        for e, s in zip(entries, sealed, strict=True)
    ]
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table("audit_records", *map(column, COLUMNS))), rows)
            conn.execute(
                text("UPDATE audit_chain_head SET last_seq = :seq, last_hash = :hash"),
                {"seq": ENTRIES, "hash": sealed[-1].entry_hash},
            )
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT setval('audit_records_id_seq', :n)"), {"n": ENTRIES})
    finally:
        engine.dispose()
    return rows


def test_s1_migration_0015_keeps_the_chained_trail_whole_and_verifiable(at_0012: str) -> None:
    before = _chained_trail(at_0012)
    svc = prepare(at_0012, clock=FixedClock(FIRST + timedelta(days=60)))
    rt = svc.runtime
    try:
        with rt.uow() as uow:
            after = uow.session.execute(
                select(*(getattr(AuditRecord, c) for c in COLUMNS))
                .where(AuditRecord.id <= ENTRIES)
                .order_by(AuditRecord.id)
            ).all()
        assert [(r.id, r.chain_seq, r.prev_hash, r.entry_hash) for r in after] == [
            (r["id"], r["chain_seq"], r["prev_hash"], r["entry_hash"]) for r in before
        ]
        assert [r.occurred_at for r in after] == [r["occurred_at"] for r in before]
        checked = verify(rt)
        assert (checked.intact, checked.complete, checked.checked) == (True, True, ENTRIES)
        # New entries (the policy's installation by ``prepare``, this one) get later ids
        # and continue the chain.
        with rt.uow() as uow:
            record(
                uow.session,
                actor=SYSTEM,
                at=rt.now(),
                action="test.after_0015",
                subject_type="card",
                subject_id=1,
            )
            uow.commit()
        added = seal(rt)
        assert added >= 1
        checked = verify(rt)
        assert (checked.intact, checked.complete, checked.checked) == (True, True, ENTRIES + added)
        with rt.uow() as uow:
            following = uow.session.scalars(
                select(AuditRecord).where(AuditRecord.chain_seq == ENTRIES + 1)
            ).one()
        assert following.id > ENTRIES
        assert following.prev_hash == before[-1]["entry_hash"]
    finally:
        svc.engine.dispose()


def _partition_of(conn: Any, entry_id: int) -> str:
    return str(
        conn.execute(
            text("SELECT tableoid::regclass::text FROM audit_records WHERE id = :id"),
            {"id": entry_id},
        ).scalar_one()
    )


@pytest.mark.parametrize("at_0012", ["postgresql"], indirect=True)  # SQLite keeps one table
def test_s1_migration_0015_partitions_the_trail_by_month_on_postgresql(at_0012: str) -> None:
    _chained_trail(at_0012)
    engine = make_engine(at_0012)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            # Every entry is in its own month's partition, made by the migration.
            assert [_partition_of(conn, i) for i in (1, 2, 6)] == [
                "audit_records_2026_09",
                "audit_records_2026_10",
                "audit_records_2026_11",
            ]
            hashes = conn.execute(text("SELECT pg_typeof(entry_hash)::text FROM audit_records"))
            assert set(hashes.scalars()) == {"bytea"}
            # Months far ahead land in the default partition until theirs is made.
            far = datetime(2031, 5, 1, tzinfo=UTC)
            conn.execute(
                text(
                    "INSERT INTO audit_records (occurred_at, channel, action, subject_type,"
                    " detail) VALUES (:at, 'system', 'test.far', 'card', '{}')"
                ),
                {"at": far},
            )
            far_id = conn.execute(text("SELECT max(id) FROM audit_records")).scalar_one()
            assert _partition_of(conn, far_id) == "audit_records_default"
        with engine.begin() as conn:
            with Session(conn) as s:
                # Its month stays in the default partition; the next ones are made.
                assert add_partitions(s, now=far, months_ahead=1) == 1
            made = conn.execute(text("SELECT to_regclass('audit_records_2031_06')")).scalar()
            assert made is not None
            assert (
                conn.execute(text("SELECT to_regclass('audit_records_2031_05')")).scalar() is None
            )
        # Append-only on every partition, also when addressed directly.
        for statement in (
            "DELETE FROM audit_records_2026_10",
            "UPDATE audit_records_2026_09 SET action = 'test.rewritten'",
            "DELETE FROM audit_records_default",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_s1_migration_0015_downgrades_with_the_trail_whole(at_0012: str) -> None:
    before = _chained_trail(at_0012)
    engine = make_engine(at_0012)
    try:
        upgrade(engine)
        cfg = alembic_config()
        with engine.connect() as conn, conn.begin():
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0012")
        with engine.begin() as conn:
            rows = conn.execute(
                text("SELECT id, chain_seq, prev_hash, entry_hash FROM audit_records ORDER BY id")
            ).all()
            assert [tuple(r) for r in rows] == [
                (r["id"], r["chain_seq"], r["prev_hash"], r["entry_hash"]) for r in before
            ]
            with pytest.raises(DBAPIError, match="append-only"), conn.begin_nested():
                conn.execute(text("DELETE FROM audit_records"))
        upgrade(engine)
    finally:
        engine.dispose()
    svc = prepare(at_0012, clock=FixedClock(FIRST + timedelta(days=60)))
    try:
        checked = verify(svc.runtime)
        assert (checked.intact, checked.checked) == (True, ENTRIES)
    finally:
        svc.engine.dispose()
