"""The tamper-evident audit trail on SQLite and PostgreSQL: sealing, append-only, verification.

The tampering tests act as a DBA would: they switch the append-only trigger off
(``ALTER TABLE ... DISABLE TRIGGER`` on PostgreSQL, ``DROP TRIGGER`` on SQLite) inside
the test's rolled-back transaction, change the table behind the service's back, and
expect the verification to name exactly the entry they touched (S-1: who saw what
must not be rewritable after the fact).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from sqlalchemy import Connection, Table, event, func, select, text, update
from sqlalchemy.exc import DBAPIError

from sscard.access.model import SYSTEM
from sscard.audit.chain import GENESIS, Problem
from sscard.audit.sealer import seal
from sscard.audit.service import record_many
from sscard.audit.tables import AuditChainHead, AuditRecord
from sscard.audit.verification import verify
from sscard.cards.model import CardState
from sscard.jobs.sweeper import sweep
from sscard.runtime import Runtime
from tests.factories import World

TABLE = cast(Table, AuditRecord.__table__)


def add_entries(rt: Runtime, n: int, action: str = "test.entry") -> list[int]:
    """``n`` audit entries in one committed unit of work; their ids."""
    with rt.uow() as uow:
        before = uow.session.scalar(select(func.max(AuditRecord.id))) or 0
        record_many(
            uow.session,
            actor=SYSTEM,
            at=rt.now(),
            action=action,
            subject_type="card",
            channel="system",
            entries=((i, None, {"n": i, "名": "陈"}) for i in range(n)),
        )
        ids = list(
            uow.session.scalars(
                select(AuditRecord.id).where(AuditRecord.id > before).order_by(AuditRecord.id)
            )
        )
        uow.commit()
    return ids


def chain(rt: Runtime) -> list[Any]:
    with rt.uow() as uow:
        return list(
            uow.session.execute(
                select(
                    AuditRecord.id,
                    AuditRecord.chain_seq,
                    AuditRecord.prev_hash,
                    AuditRecord.entry_hash,
                    AuditRecord.action,
                    AuditRecord.occurred_at,
                )
                .where(AuditRecord.chain_seq.is_not(None))
                .order_by(AuditRecord.chain_seq)
            ).all()
        )


def unsealed(rt: Runtime) -> int:
    with rt.uow() as uow:
        return int(
            uow.session.scalar(
                select(func.count()).select_from(AuditRecord).where(AuditRecord.chain_seq.is_(None))
            )
            or 0
        )


@contextmanager
def statements(connection: Connection) -> Iterator[list[tuple[str, bool]]]:
    """Every SQL statement sent while inside, with whether it was an executemany."""
    seen: list[tuple[str, bool]] = []

    def listen(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, many: bool) -> None:
        seen.append((sql, many))

    event.listen(connection, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", listen)


@contextmanager
def triggers_off(connection: Connection) -> Iterator[None]:
    """What a DBA with the database but without the key can do (rolled back with the test)."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
        )
    else:
        connection.execute(text("DROP TRIGGER audit_records_no_update"))
        connection.execute(text("DROP TRIGGER audit_records_no_delete"))
    yield


def refused(connection: Connection, statement: Any) -> None:
    savepoint = connection.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        connection.execute(statement)
    savepoint.rollback()


# ---------------------------------------------------------------- sealing


def test_s1_sealing_chains_every_entry_in_id_order_in_set_based_batches(
    rt: Runtime, connection: Connection
) -> None:
    add_entries(rt, 10)
    waiting = unsealed(rt)
    with statements(connection) as seen:
        assert seal(rt, batch_size=4) == waiting
    updates = [many for sql, many in seen if sql.lstrip().startswith("UPDATE audit_records")]
    batches = -(-waiting // 4)
    # One UPDATE per batch (an executemany; a last batch of one row is a plain execute).
    assert len(updates) == batches
    assert all(updates[:-1])
    selects = [sql for sql, _ in seen if "FROM audit_records" in sql and "chain_seq IS NULL" in sql]
    # One SELECT per batch (and an empty look when the last batch was full).
    assert len(selects) == batches + (waiting % 4 == 0)

    links = chain(rt)
    assert [r.chain_seq for r in links] == list(range(1, waiting + 1))
    assert [r.id for r in links] == sorted(r.id for r in links)
    assert links[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(links))
    assert unsealed(rt) == 0
    with rt.uow() as uow:
        head = uow.session.get(AuditChainHead, 1)
        assert head is not None
        assert (head.last_seq, head.last_hash) == (waiting, links[-1].entry_hash)


def test_s1_sealing_is_idempotent_and_continues_the_chain(rt: Runtime) -> None:
    add_entries(rt, 3)
    sealed = seal(rt)
    first = chain(rt)
    assert seal(rt) == 0
    assert chain(rt) == first
    add_entries(rt, 2)
    assert seal(rt) == 2
    links = chain(rt)
    assert links[: len(first)] == first
    assert links[len(first)].prev_hash == first[-1].entry_hash
    assert links[-1].chain_seq == sealed + 2
    assert verify(rt).intact


def test_s1_an_entry_committed_late_with_a_lower_id_gets_a_later_seq(
    rt: Runtime, connection: Connection
) -> None:
    ids = add_entries(rt, 3)
    seal(rt)
    late = min(r.id for r in chain(rt)) - 1
    connection.execute(
        TABLE.insert().values(
            id=late,
            occurred_at=rt.now(),
            channel="system",
            action="test.late",
            subject_type="card",
            detail={},
        )
    )
    assert seal(rt) == 1
    links = chain(rt)
    assert (links[-1].id, links[-1].action) == (late, "test.late")
    assert links[-1].chain_seq == len(links)
    assert ids[-1] in [r.id for r in links]
    assert verify(rt).intact


def test_s1_the_sweeper_seals_every_cycle_including_its_own_records(world: World) -> None:
    world.cards(3, CardState.LOST_ORAL)
    world.advance(days=6)
    report = sweep(world.rt)
    assert report.counts["oral_report_lapsed"] == 3
    assert report.counts["audit_sealed"] > 3
    assert unsealed(world.rt) == 0
    assert "card.oral_report_lapse" in {r.action for r in chain(world.rt)}


# ---------------------------------------------------------------- append-only


def test_s1_the_database_refuses_to_delete_or_change_an_audit_entry(
    rt: Runtime, connection: Connection
) -> None:
    (fresh, *_) = add_entries(rt, 2)
    # Unsealed: no column may change except the sealer's one-time fill.
    refused(connection, update(TABLE).where(TABLE.c.id == fresh).values(action="test.rewritten"))
    refused(
        connection,
        update(TABLE)
        .where(TABLE.c.id == fresh)
        .values(chain_seq=10**9, prev_hash="0" * 64, entry_hash="1" * 64, detail={"n": 99}),
    )
    refused(connection, update(TABLE).where(TABLE.c.id == fresh).values(chain_seq=10**9))
    refused(connection, TABLE.delete().where(TABLE.c.id == fresh))
    seal(rt)
    sealed = chain(rt)[-1]
    # Sealed: nothing may change, not even the chain columns.
    refused(connection, update(TABLE).where(TABLE.c.id == sealed.id).values(detail={}))
    refused(
        connection,
        update(TABLE).where(TABLE.c.id == sealed.id).values(entry_hash="f" * 64),
    )
    refused(connection, update(TABLE).where(TABLE.c.id == sealed.id).values(chain_seq=None))
    refused(connection, TABLE.delete())
    assert chain(rt)[-1] == sealed
    assert verify(rt).intact


# ---------------------------------------------------------------- verification


def test_s1_verification_of_an_intact_chain_counts_sealed_checked_and_waiting(rt: Runtime) -> None:
    add_entries(rt, 6)
    total = seal(rt)
    add_entries(rt, 2)
    result = verify(rt, batch_size=4)
    assert result.intact
    assert result.complete
    assert (result.sealed, result.checked, result.unsealed) == (total, total, 2)
    assert result.last_checked_seq == total
    middle = verify(rt, from_seq=total - 2)
    assert middle.intact
    assert middle.checked == 3
    assert verify(rt, from_seq=total + 5).checked == 0
    limited = verify(rt, limit=2)
    assert (limited.checked, limited.complete) == (2, False)


@pytest.mark.parametrize(
    ("column", "value"),
    [("detail", {"n": 2, "名": "李"}), ("action", "test.other"), ("person_id", 12345)],
)
def test_s1_verification_names_exactly_the_entry_a_dba_modified(
    rt: Runtime, connection: Connection, column: str, value: Any
) -> None:
    add_entries(rt, 8)
    seal(rt)
    victim = chain(rt)[4]
    with triggers_off(connection):
        connection.execute(update(TABLE).where(TABLE.c.id == victim.id).values({column: value}))
    result = verify(rt, batch_size=3)
    assert not result.intact
    assert result.broken is not None
    assert result.broken.problem is Problem.HASH_MISMATCH
    assert (result.broken.chain_seq, result.broken.id) == (victim.chain_seq, victim.id)
    assert result.broken.occurred_at == victim.occurred_at
    assert result.broken.action == (value if column == "action" else victim.action)
    assert result.checked == victim.chain_seq - 1


def test_s1_verification_names_the_entry_after_a_deleted_one(
    rt: Runtime, connection: Connection
) -> None:
    add_entries(rt, 6)
    seal(rt)
    links = chain(rt)
    with triggers_off(connection):
        connection.execute(TABLE.delete().where(AuditRecord.id == links[2].id))
    broken = verify(rt).broken
    assert broken is not None
    assert broken.problem is Problem.GAP
    assert (broken.chain_seq, broken.id) == (links[3].chain_seq, links[3].id)
    assert broken.detail == f"entry {links[2].chain_seq} is missing"


def test_s1_verification_notices_the_newest_entries_deleted(
    rt: Runtime, connection: Connection
) -> None:
    add_entries(rt, 4)
    seal(rt)
    links = chain(rt)
    with triggers_off(connection):
        connection.execute(TABLE.delete().where(AuditRecord.chain_seq >= links[-2].chain_seq))
    broken = verify(rt).broken
    assert broken is not None
    assert broken.problem is Problem.GAP
    assert (broken.chain_seq, broken.id) == (links[-2].chain_seq, None)


def test_s1_verification_names_a_prev_hash_rewritten_to_skip_an_entry(
    rt: Runtime, connection: Connection
) -> None:
    add_entries(rt, 5)
    seal(rt)
    links = chain(rt)
    with triggers_off(connection):
        connection.execute(
            update(TABLE).where(AuditRecord.id == links[3].id).values(prev_hash=links[1].entry_hash)
        )
    broken = verify(rt).broken
    assert broken is not None
    assert (broken.problem, broken.id) == (Problem.PREV_MISMATCH, links[3].id)


def _forge(rt: Runtime, connection: Connection, *, move_head: bool) -> tuple[int, int]:
    """Insert an entry after the last one, hashed without the key; its id and seq."""
    last = chain(rt)[-1]
    seq = last.chain_seq + 1
    forged_hash = hashlib.sha256(b"forged").hexdigest()
    forged = connection.execute(
        TABLE.insert()
        .values(
            occurred_at=rt.now(),
            channel="system",
            action="person.disclosed",
            subject_type="person",
            detail={},
            chain_seq=seq,
            prev_hash=last.entry_hash,
            entry_hash=forged_hash,
        )
        .returning(AuditRecord.id)
    ).scalar_one()
    if move_head:
        connection.execute(update(AuditChainHead).values(last_seq=seq, last_hash=forged_hash))
    return int(forged), seq


@pytest.mark.parametrize("move_head", [True, False])
def test_s1_verification_names_an_inserted_forged_entry(
    rt: Runtime, connection: Connection, move_head: bool
) -> None:
    add_entries(rt, 3)
    seal(rt)
    forged, seq = _forge(rt, connection, move_head=move_head)
    result = verify(rt)
    assert result.broken is not None
    assert (result.broken.id, result.broken.chain_seq) == (forged, seq)
    assert result.broken.action == "person.disclosed"
    expected = Problem.HASH_MISMATCH if move_head else Problem.HEAD_MISMATCH
    assert result.broken.problem is expected


def test_s1_a_chain_sealed_under_another_key_does_not_verify(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_entries(rt, 2)
    monkeypatch.setenv("SSCARD_AUDIT_KEY", "5e" * 32)
    seal(rt)
    monkeypatch.setenv("SSCARD_AUDIT_KEY", "a7" * 32)
    broken = verify(rt).broken
    assert broken is not None
    assert (broken.chain_seq, broken.problem) == (1, Problem.HASH_MISMATCH)
